#!/usr/bin/env bash
# GPU readiness check (issue 12): one prepared script for a machine with one NVIDIA GPU and CUDA 12.
#
#   bench/gpu.sh [--output DIR] [--skip-build]
#
# 1. builds the CLI against the CUDA libtorch (dotnet build -p:NoPropBackend=cuda; needs NuGet access or a
#    package cache holding libtorch-cuda-12.8-linux-x64 and TorchSharp-cuda),
# 2. trains NoProp-DT for one full MNIST epoch (55,000 training images, 5,000 validation) with the sequential
#    schedule (Algorithm 1), then with the parallel schedule (fused blocks),
# 3. evaluates the sequential DT model on the 10,000 test images with fp32 and with bf16 convolutions,
# 4. trains NoProp-CT for one epoch on 5,000 images (setup) and times Heun-40 inference on the 10,000 test images,
# and prints the times and the peak CUDA memory (NVML, sampled every 100 ms by the trainer; nvidia-smi for eval).
# Budget: within 8 minutes on one recent GPU (each DT epoch is 4,300 minibatch steps of batch 128 over 10 blocks).
set -euo pipefail
cd "$(dirname "$0")/.."
output=runs/gpu-$(date +%Y%m%d-%H%M%S) build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --output) output="$2"; shift ;;
    --skip-build) build=0 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
command -v nvidia-smi >/dev/null || { echo "gpu.sh: nvidia-smi not found: this script needs an NVIDIA GPU with its driver" >&2; exit 1; }
mkdir -p "$output"
start=$(date +%s)
echo "== GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)"
echo "== CPU: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) cores"

if [ "$build" = 1 ]; then
  echo "== building the CUDA variant"
  dotnet build src/NoProp.Cli/NoProp.Cli.csproj -c Release -p:NoPropBackend=cuda --nologo -v q -clp:ErrorsOnly
fi
cli=(dotnet src/NoProp.Cli/bin/Release/net10.0/NoProp.Cli.dll)

metric() { /usr/bin/python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("n/a" if v is None else v)' "$1" "$2"; }

for schedule in sequential parallel; do
  echo "== NoProp-DT, 1 full MNIST epoch, $schedule schedule"
  dir="$output/dt-$schedule"
  "${cli[@]}" train --method dt --schedule "$schedule" --epochs 1 --device cuda --output "$dir" 2>"$dir.log" >"$dir.out" \
    || { echo "failed: see $dir.log" >&2; tail -5 "$dir.log" >&2; exit 1; }
  echo "   training $(metric "$dir/metrics.json" train_seconds) s, validation $(metric "$dir/metrics.json" validation_accuracy)," \
       "test $(metric "$dir/metrics.json" test_accuracy) (inference $(metric "$dir/metrics.json" test_inference_seconds) s)," \
       "peak CUDA memory $(metric "$dir/metrics.json" peak_cuda_memory_mb) MB, peak RSS $(metric "$dir/metrics.json" peak_memory_mb) MB"
done

echo "== NoProp-DT inference on the 10,000 test images, fp32 and bf16 convolutions (--inference-precision; the sequential model)"
for precision in fp32 bf16; do
  "${cli[@]}" eval --model "$output/dt-sequential" --device cuda --inference-precision "$precision" | head -1
done

echo "== NoProp-CT: setup (1 epoch on 5,000 images), then Heun-40 inference on the 10,000 test images"
dir="$output/ct"
"${cli[@]}" train --method ct --epochs 1 --train-size 5000 --validation-size 1000 --test-size 100 --device cuda --output "$dir" \
  2>"$dir.log" >"$dir.out" || { echo "failed: see $dir.log" >&2; tail -5 "$dir.log" >&2; exit 1; }
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$output/ct-eval-memory.csv" &
sampler=$!
"${cli[@]}" eval --model "$dir" --solver heun --steps 40 --device cuda | tee "$output/ct-eval.out"
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
echo "   peak GPU memory in use during CT inference (nvidia-smi, whole device): $(sort -n "$output/ct-eval-memory.csv" | tail -1) MiB"
echo "== done in $(( $(date +%s) - start )) s; results in $output"
