#!/usr/bin/env bash
# NoProp.NET against its PyTorch replica on this machine, side by side (issue 12).
#
#   bench/compare.sh [--quick | --full] [--rounds N] [--threads N] [--train-size N] [--test-size N] [--skip-fm] [--skip-bf16]
#                    [--keep DIR]
#
# Runs our CLI and the PyTorch replica (bench/pytorch/) alternately, --rounds times each (default 2), and prints per
# figure both sides' values and the ratio ours/PyTorch of the medians (below 1: we are faster/smaller):
#   - NoProp-DT, 1 training epoch, sequential schedule (Algorithm 1) and parallel schedule (fused blocks)
#   - NoProp-DT inference over the test images (stochastic Eq. 3, batches of 1000, after the sequential run)
#   - the same DT inference with bf16 convolutions (--inference-precision bf16) on both sides: ours evaluates each
#     round's sequential model in a process of its own, the replica infers in one (its weights from 256 images:
#     inference cost does not depend on them); and our test accuracy with bf16 beside fp32's, the same models
#   - NoProp-FM, Heun with 40 steps, inference over the test images (image features cached on both sides)
#   - peak resident set of the whole process (GNU time's maximum RSS), for the DT runs
#   - CPU seconds (user + system) of each whole DT process (data loading, the epoch, validation, test inference):
#     on a busy machine wall-clock times include waiting for a core, CPU time much less so
# Both sides: the same configuration (paper block, T = 10, one-hot, batch 128, AdamW 1e-3/1e-3, eta 0.1), the same
# data (MNIST, our split sizes), the same intra-op thread count, one OpenBLAS thread, the same glibc malloc
# thresholds (ours sets them with mallopt at start-up; PyTorch gets them through MALLOC_*_ environment variables).
# The replica mirrors our fused blocks for the parallel schedule and our fused, chunked, channels-last image
# features for inference (with our zero second channel that keeps conv1 channels-last), our ReLU + max-pool (pooled first through the channels-last kernel, same values) and our
# dropout masks (rand < 1 - p, the same Bernoulli distribution as F.dropout's), so
# each of those figures compares the same algorithm (and the same oneDNN kernels: the ratio is what the .NET side
# costs or saves). Two parts of ours have no PyTorch-level equivalent and stay in the replica's best ATen formulation
# (the same values): the dropout masks computed from the generator's state (CpuGeneratorDraws) and the max-pool, ReLU
# and dropout as single autograd operations (PoolDropout, ReluDropout), both C# kernels. Three more rows compare us with the replica run the way Algorithm 1 is usually written, block by
# block with each block's own NCHW convolutions, F.max_pool2d(F.relu(h), 2) and F.dropout: what a user gains over a plain
# PyTorch NoProp.
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (set by this machine's environment for other purposes) are unset for the
# PyTorch commands only, so OpenBLAS picks its own kernel for the CPU; the script prints which BLAS, core and oneDNN
# PyTorch then runs.
#
#   --quick: 2,000 training, 500 validation, 2,000 test images (about 5-8 minutes on 2 idle cores)
#   --full:  10,000 training, 1,000 validation, 10,000 test images (the issue's configuration; ~25-35 minutes)
#   --train-size / --test-size override the mode's image counts; --skip-fm / --skip-bf16 leave those rows out.
# Needs: a .NET 10 SDK, and for the replica `apt-get install -y python3-torch python3-torchvision
# libopenblas0-pthread` (PyTorch 1.13 for /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mode=quick rounds=2 threads=2 skip_fm=0 bf16=1 keep="" train_override="" test_override=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --rounds) rounds="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --train-size) train_override="$2"; shift ;;
    --test-size) test_override="$2"; shift ;;
    --skip-fm) skip_fm=1 ;;
    --skip-bf16) bf16=0 ;;
    --keep) keep="$2"; shift ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$rounds" in ''|*[!0-9]*) echo "compare.sh: --rounds must be a positive number" >&2; exit 2 ;; esac
[ "$rounds" -ge 1 ] || { echo "compare.sh: --rounds must be at least 1" >&2; exit 2; }
if [ "$mode" = quick ]; then train=2000 valid=500 test=2000; else train=10000 valid=1000 test=10000; fi
train=${train_override:-$train} test=${test_override:-$test}

py=/usr/bin/python3
if ! "$py" -c 'import torch' 2>/dev/null; then
  echo "compare.sh: PyTorch is missing for $py; install it with:" >&2
  echo "  apt-get install -y python3-torch python3-torchvision libopenblas0-pthread" >&2
  exit 1
fi
[ -x /usr/bin/time ] || { echo "compare.sh: GNU time (/usr/bin/time) is needed for peak RSS: apt-get install -y time" >&2; exit 1; }

work=${keep:-$(mktemp -d)}
mkdir -p "$work"
[ -n "$keep" ] || trap 'rm -rf "$work"' EXIT

echo "== machine"
echo "CPU: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) cores visible; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "mode: $mode ($train training, $valid validation, $test test images), $rounds round(s), $threads intra-op threads"

echo "== building NoProp.NET (Release)"
dotnet build src/NoProp.Cli/NoProp.Cli.csproj -c Release --nologo -v q -clp:ErrorsOnly >/dev/null
cli=(dotnet "$root/src/NoProp.Cli/bin/Release/net10.0/NoProp.Cli.dll")
touch "$root/src/NoProp.Cli/bin/Release/.built"

# The replica's environment: the same malloc thresholds as ours, one BLAS thread, the CPU's own OpenBLAS kernel.
pyenv=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS="$threads"
       MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 NOPROP_THREADS="$threads")
echo "== PyTorch replica backend"
"${pyenv[@]}" "$py" bench/pytorch/backend_info.py
echo "== NoProp.NET backend"
echo "TorchSharp $(sed -n 's/.*<TorchSharpVersion>\(.*\)<.*/\1/p' Directory.Build.props), libtorch $(sed -n 's/.*<LibTorchVersion>\(.*\)<.*/\1/p' Directory.Build.props) (CPU), $(dotnet --version | sed 's/^/.NET SDK /'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)} (libtorch does not use OpenBLAS)"

# A field of a JSON file (metrics.json) or of the last JSON line of a log (the replica's output).
json() { "$py" -c '
import json, sys
text = open(sys.argv[1]).read()
try:
    d = json.loads(text)
except ValueError:
    d = json.loads([l for l in text.splitlines() if l.startswith("{")][-1])
print(d[sys.argv[2]])' "$1" "$2"; }
declare -A values
add() { values[$1]="${values[$1]:-} $2"; }

run_ours_dt() {   # $1 schedule, $2 round
  local out="$work/ours-dt-$1-$2"
  rm -rf "$out"
  /usr/bin/time -f '%M %U %S' -o "$out.rss" "${cli[@]}" train --method dt --schedule "$1" --epochs 1 --train-size "$train" \
    --validation-size "$valid" --test-size "$test" --threads "$threads" --seed 1 --output "$out" >"$out.log" 2>&1 \
    || { echo "our DT run failed: see $out.log" >&2; tail -5 "$out.log" >&2; exit 1; }
  add "dt-$1-train-ours" "$(json "$out/metrics.json" train_seconds)"
  add "dt-$1-valid-ours" "$(json "$out/metrics.json" validation_accuracy)"
  add "dt-$1-test-ours" "$(json "$out/metrics.json" test_accuracy)"
  add "dt-$1-infer-ours" "$(json "$out/metrics.json" test_inference_seconds)"
  add "dt-$1-rss-ours" "$(awk 'END { print int($1 / 1024) }' "$out.rss")"
  add "dt-$1-cpu-ours" "$(awk 'END { print $2 + $3 }' "$out.rss")"
}
run_ours_dt_bf16() {   # $1 round: the sequential run's model, evaluated with bf16 convolutions (a separate process)
  local out="$work/ours-dt-bf16-$1"
  "${cli[@]}" eval --model "$work/ours-dt-sequential-$1" --test-size "$test" --threads "$threads" --inference-precision bf16 >"$out.log" 2>&1 \
    || { echo "our bf16 DT evaluation failed: see $out.log" >&2; tail -5 "$out.log" >&2; exit 1; }
  add "dt-bf16-infer-ours" "$(sed -n 's/^test accuracy:.* \([0-9.]*\) s)$/\1/p' "$out.log")"
  add "dt-bf16-test-ours" "$(sed -n 's/^test accuracy: \([0-9.]*\) %.*/\1/p' "$out.log" | awk '{ print $1 / 100 }')"
}
run_torch_dt_bf16_inference() {   # the mirrored replica's fused inference in bf16, in a process of its own
  local out="$work/torch-dt-bf16-inference-$1"
  "${pyenv[@]}" "$py" bench/pytorch/noprop_dt.py --inference-precision bf16 --epochs 1 --train-size 256 --validation-size 0 \
    --test-size "$test" --threads "$threads" --seed 1 --quiet >"$out.log" 2>&1 \
    || { echo "the PyTorch bf16 inference run failed: see $out.log" >&2; tail -5 "$out.log" >&2; exit 1; }
  add "dt-bf16-infer-torch" "$(json "$out.log" test_inference_seconds)"
}
run_torch_dt() {
  local out="$work/torch-dt-$1-$2"
  /usr/bin/time -f '%M %U %S' -o "$out.rss" "${pyenv[@]}" "$py" bench/pytorch/noprop_dt.py --schedule "$1" --epochs 1 \
    --train-size "$train" --validation-size "$valid" --test-size "$test" --threads "$threads" --seed 1 --quiet >"$out.log" 2>&1 \
    || { echo "the PyTorch DT run failed: see $out.log" >&2; tail -5 "$out.log" >&2; exit 1; }
  add "dt-$1-train-torch" "$(json "$out.log" train_seconds)"
  add "dt-$1-valid-torch" "$(json "$out.log" validation_accuracy)"
  add "dt-$1-test-torch" "$(json "$out.log" test_accuracy)"
  add "dt-$1-infer-torch" "$(json "$out.log" test_inference_seconds)"
  add "dt-$1-rss-torch" "$(awk 'END { print int($1 / 1024) }' "$out.rss")"
  add "dt-$1-cpu-torch" "$(awk 'END { print $2 + $3 }' "$out.rss")"
}
run_torch_dt_plain() {   # Algorithm 1 as usually written: per block, F.max_pool2d(F.relu(h), 2), F.dropout
  local out="$work/torch-dt-plain-$1"
  "${pyenv[@]}" "$py" bench/pytorch/noprop_dt.py --schedule sequential --plain --epochs 1 --train-size "$train" \
    --validation-size "$valid" --test-size 10 --threads "$threads" --seed 1 --quiet >"$out.log" 2>&1 \
    || { echo "the plain PyTorch DT run failed: see $out.log" >&2; tail -5 "$out.log" >&2; exit 1; }
  add "dt-plain-train-torch" "$(json "$out.log" train_seconds)"
}
run_torch_dt_per_block_inference() {   # a separate process, so that the DT runs' CPU seconds and RSS stay comparable
  local out="$work/torch-dt-per-block-inference-$1"
  # Batches of 128: the per-block replica's fastest (2,000 test images, quiet AMD EPYC: batches of 32/64/128/256/1000
  # took 4.9/3.9/3.8/4.0/16.1 s; at 1000 every block's activations are tens of MB).
  "${pyenv[@]}" "$py" bench/pytorch/noprop_dt.py --inference per-block --plain --inference-batch-size 128 --epochs 1 --train-size 256 --validation-size 0 \
    --test-size "$test" --threads "$threads" --seed 1 --quiet >"$out.log" 2>&1 \
    || { echo "the PyTorch per-block inference run failed: see $out.log" >&2; tail -5 "$out.log" >&2; exit 1; }
  add "dt-per-block-infer-torch" "$(json "$out.log" test_inference_seconds)"
}
run_ours_fm() {
  local out="$work/ours-fm-$1"
  "${cli[@]}" eval --model "$work/fm-model" --test-size "$test" --threads "$threads" >"$out.log" 2>&1 \
    || { echo "our FM evaluation failed: see $out.log" >&2; exit 1; }
  add "fm-infer-ours" "$(sed -n 's/^test accuracy:.* \([0-9.]*\) s)$/\1/p' "$out.log")"
}
run_torch_fm() {
  local out="$work/torch-fm-$1"
  "${pyenv[@]}" "$py" bench/pytorch/noprop_fm_infer.py --test-size "$test" --steps 40 --threads "$threads" >"$out.log" 2>&1 \
    || { echo "the PyTorch FM run failed: see $out.log" >&2; exit 1; }
  add "fm-infer-torch" "$(json "$out.log" inference_seconds)"
}

if [ "$skip_fm" = 0 ]; then
  echo "== setup: a NoProp-FM model to evaluate (1 epoch on 500 images; inference cost does not depend on the weights)"
  "${cli[@]}" train --method fm --epochs 1 --train-size 500 --validation-size 0 --test-size 10 --threads "$threads" \
    --output "$work/fm-model" >"$work/fm-train.log" 2>&1 || { echo "FM setup failed: see $work/fm-train.log" >&2; exit 1; }
fi

for r in $(seq 1 "$rounds"); do
  for schedule in sequential parallel; do
    order=$([ $((r % 2)) = 1 ] && echo "NoProp.NET then PyTorch" || echo "PyTorch then NoProp.NET")
    echo "== round $r/$rounds: DT $schedule, $order ($(date +%T), load $(cut -d' ' -f1 /proc/loadavg))"
    if [ $((r % 2)) = 1 ]; then run_ours_dt "$schedule" "$r"; run_torch_dt "$schedule" "$r"
    else run_torch_dt "$schedule" "$r"; run_ours_dt "$schedule" "$r"; fi
  done
  if [ "$bf16" = 1 ]; then
    echo "== round $r/$rounds: DT inference with bf16 convolutions, both sides"
    if [ $((r % 2)) = 1 ]; then run_ours_dt_bf16 "$r"; run_torch_dt_bf16_inference "$r"; else run_torch_dt_bf16_inference "$r"; run_ours_dt_bf16 "$r"; fi
  fi
  echo "== round $r/$rounds: PyTorch DT as usually written (block by block, plain pooling and dropout): a training epoch, inference"
  run_torch_dt_plain "$r"
  run_torch_dt_per_block_inference "$r"
  if [ "$skip_fm" = 0 ]; then
    echo "== round $r/$rounds: FM Heun-40 inference"
    if [ $((r % 2)) = 1 ]; then run_ours_fm "$r"; run_torch_fm "$r"; else run_torch_fm "$r"; run_ours_fm "$r"; fi
  fi
done

echo
echo "== results (ratio = median ours / median PyTorch; below 1 is better for us)"
"$py" - "$mode" "$train" "$test" <<EOF
import statistics, sys
mode, train, test = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
v = {$(for k in "${!values[@]}"; do printf '"%s": [%s], ' "$k" "$(echo ${values[$k]} | tr ' ' ',')"; done)}
rows = [
    ("DT training epoch, sequential (s)", "dt-sequential-train"),
    ("DT training epoch, parallel (s)", "dt-parallel-train"),
    (f"DT inference, {test} test images (s)", "dt-sequential-infer"),
    (f"DT inference with bf16 convolutions, {test} test images, both sides (s)", "dt-bf16-infer"),
    (f"FM Heun-40 inference, {test} test images (s)", "fm-infer"),
    ("CPU seconds, whole DT sequential process", "dt-sequential-cpu"),
    ("CPU seconds, whole DT parallel process", "dt-parallel-cpu"),
    ("peak RSS, DT sequential run (MB)", "dt-sequential-rss"),
    ("peak RSS, DT parallel run (MB)", "dt-parallel-rss"),
    ("validation accuracy, sequential", "dt-sequential-valid"),
    ("validation accuracy, parallel", "dt-parallel-valid"),
    ("test accuracy, sequential", "dt-sequential-test"),
    ("test accuracy, parallel", "dt-parallel-test"),
]
# Against the replica written the way Algorithm 1 is usually written: block by block, each block its own
# convolutions (NCHW), F.max_pool2d(F.relu(h), 2), no fusion, at its fastest inference batch (128). Our parallel
# schedule does the same block steps per minibatch as Algorithm 1.
per_block = [
    ("DT training epoch: our sequential schedule against plain PyTorch (Algorithm 1) (s)", "dt-sequential-train-ours", "dt-plain-train-torch"),
    ("DT training epoch: our parallel schedule against plain PyTorch (Algorithm 1) (s)", "dt-parallel-train-ours", "dt-plain-train-torch"),
    (f"DT inference, {test} test images: ours against plain PyTorch, block by block (s)", "dt-sequential-infer-ours", "dt-per-block-infer-torch"),
]
print(f"| figure ({mode}: {train} training images) | NoProp.NET | PyTorch replica | ratio |")
print("|---|---|---|---|")
for name, key in rows + [(n, (o, t)) for n, o, t in per_block]:
    ours, torch_ = (v.get(key[0]), v.get(key[1])) if isinstance(key, tuple) else (v.get(key + "-ours"), v.get(key + "-torch"))
    if not ours or not torch_:
        continue
    fmt = (lambda x: f"{x:.4f}") if "accuracy" in name else (lambda x: f"{x:.1f}" if x < 1000 else f"{x:,.0f}")
    ratio = statistics.median(ours) / statistics.median(torch_)
    print(f"| {name} | {', '.join(fmt(x) for x in ours)} | {', '.join(fmt(x) for x in torch_)} | {ratio:.2f} |")
if v.get("dt-bf16-test-ours"):
    print(f"our test accuracy with bf16 convolutions: {', '.join(f'{x:.4f}' for x in v['dt-bf16-test-ours'])} "
          f"(the same models in fp32: {', '.join(f'{x:.4f}' for x in v['dt-sequential-test-ours'])})")
EOF
echo "(load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); logs in $work$([ -n "$keep" ] || echo ', removed on exit: use --keep DIR to keep them'))"
