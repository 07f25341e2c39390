#!/usr/bin/env bash
# Time to 99.0 % validation accuracy: NoProp-DT (one-hot) on full MNIST (55,000 training + 5,000 validation images).
#
#   bench/time-to-accuracy.sh [--recipe paper|fast|anneal|short] [--max-epochs N] [--target 0.99] [--threads N] [--output DIR] [-- extra train options]
#
# Trains with validation after every epoch and the test split tracked per epoch (test-curve.csv: never used for model
# selection), then reports the first epoch whose validation accuracy reaches --target: the minutes of training up to
# it (training steps only, as metrics.csv counts them) and the test accuracy of that epoch's model.
# The script stops the run (SIGTERM: the CLI saves a checkpoint and exits) once an epoch has reached the target and
# that epoch's test accuracy is recorded, or at --max-epochs; the figure is read off the per-epoch records.
#
# Recipes (both are NoProp-DT: every block learns from its own local loss only):
#   paper: the paper's recipe: Algorithm 1's sequential schedule, AdamW lr 1e-3, weight decay 1e-3, batch 128, constant lr.
#   fast:  all blocks step on each minibatch (--schedule parallel, fused), one-cycle learning rate peaking at 3e-3
#          over --max-epochs (default 15). Its speed-up comes from the fused computation and from the schedule;
#          whether it reaches 99.0 % sooner than the paper recipe is what this script measures.
#   anneal: the paper's recipe (Algorithm 1, AdamW lr 1e-3, batch 128) with the rate decayed to zero by a cosine over
#          --max-epochs (default 4), no warm-up: the paper recipe reaches ~98 % within two epochs at its constant rate
#          and then plateaus; the decay is what lets the last epoch settle.
#   short: three epochs: the parallel schedule with minibatches of 64 (twice the updates per epoch), AdamW lr 1e-3
#          decayed to zero by a cosine over --max-epochs (default 3), and deterministic inference (--inference
#          deterministic: ε = 0 in Eq. 3, for validation, test and the saved model; the blocks train exactly as with
#          the paper's stochastic inference, which lost 0.3-0.5 points of validation accuracy on the same weights).
set -euo pipefail
cd "$(dirname "$0")/.."

recipe=paper max_epochs="" target=0.99 threads=2 output="" extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --recipe) recipe="$2"; shift ;;
    --max-epochs) max_epochs="$2"; shift ;;
    --target) target="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --output) output="$2"; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "time-to-accuracy.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$recipe" in
  paper) flags=(--schedule sequential --lr 0.001 --lr-schedule constant); max_epochs=${max_epochs:-100} ;;
  fast) max_epochs=${max_epochs:-15}; flags=(--schedule parallel --lr 0.003 --lr-schedule one-cycle) ;;
  anneal) max_epochs=${max_epochs:-4}; flags=(--schedule sequential --lr 0.001 --lr-schedule cosine) ;;
  short) max_epochs=${max_epochs:-3}
    flags=(--schedule parallel --batch-size 64 --lr 0.001 --lr-schedule cosine --inference deterministic) ;;
  *) echo "time-to-accuracy.sh: --recipe must be paper, fast, anneal or short" >&2; exit 2 ;;
esac
output=${output:-runs/time-to-accuracy-$recipe-$(date +%Y%m%d-%H%M%S)}

echo "CPU: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "recipe $recipe: up to $max_epochs epochs, target validation accuracy $target; output in $output"
mkdir -p "$output"
./noprop train --method dt --embedding onehot --epochs "$max_epochs" --threads "$threads" --track-test \
  --output "$output" "${flags[@]}" "${extra[@]}" &
train=$!
trap 'kill -TERM $train 2>/dev/null || true' INT TERM
# The first epoch at the target, once its test accuracy is in test-curve.csv (written after metrics.csv's row).
reached() {
  [ -f "$output/metrics.csv" ] && [ -f "$output/test-curve.csv" ] || return 1
  /usr/bin/python3 - "$output" "$target" <<'EOF2'
import csv, sys
output, target = sys.argv[1], float(sys.argv[2])
rows = list(csv.DictReader(open(f"{output}/metrics.csv")))
tested = {r["epoch"] for r in csv.DictReader(open(f"{output}/test-curve.csv"))}
hit = [r["epoch"] for r in rows if (r.get("validation_accuracy") or "") and float(r["validation_accuracy"]) >= target]
sys.exit(0 if hit and hit[0] in tested else 1)
EOF2
}
while kill -0 "$train" 2>/dev/null; do
  if reached; then
    echo "target reached: stopping the run"
    kill -TERM "$train" 2>/dev/null || true
    break
  fi
  sleep 5
done
wait "$train" || true

/usr/bin/python3 - "$output" "$target" "$recipe" <<'EOF'
import csv, sys
output, target, recipe = sys.argv[1], float(sys.argv[2]), sys.argv[3]
with open(f"{output}/metrics.csv") as f:
    rows = list(csv.DictReader(f))
tests = {}
try:
    with open(f"{output}/test-curve.csv") as f:
        for r in csv.DictReader(f):
            tests[int(r["epoch"])] = float(r.get("test_accuracy") or 0)
except FileNotFoundError:
    pass
for r in rows:
    v = r.get("validation_accuracy") or ""
    if v and float(v) >= target:
        epoch = int(r["epoch"])
        minutes = float(r["train_seconds"]) / 60
        test = tests.get(epoch)
        print(f"{recipe}: validation {float(v) * 100:.2f} % >= {target * 100:.1f} % at epoch {epoch} after "
              f"{minutes:.1f} minutes of training; test accuracy then {test * 100:.2f} %" if test is not None else
              f"{recipe}: validation {float(v) * 100:.2f} % at epoch {epoch} after {minutes:.1f} minutes (no test curve)")
        break
else:
    best = max((float(r["validation_accuracy"]) for r in rows if r.get("validation_accuracy")), default=float("nan"))
    print(f"{recipe}: validation accuracy never reached {target * 100:.1f} % in {len(rows)} epochs "
          f"(best {best * 100:.2f} %, {float(rows[-1]['train_seconds']) / 60:.1f} minutes)")
    sys.exit(3)
EOF
