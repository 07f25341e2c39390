#!/usr/bin/env bash
# Reruns every NoProp-CT / NoProp-FM table of BENCHMARKS.md ("NoProp-CT and NoProp-FM on MNIST") from scratch and
# prints the figures each table needs: the weighting/readout comparison, CT's learnable schedule (what trains ψ,
# its weight decay, the ODE against the image-only readout), the solver sweeps (test and validation) and the cached
# image features. Every run: 3 epochs on 10,000 MNIST training images, 5,000 validation images, one intra-op thread
# (the figures are reproducible to the digit with the same thread count; times depend on the machine's load).
#
#   bench/ct-fm-tables.sh [--out DIR] [--only weighting|schedule|sweeps|cache]
#
# About 40 minutes on an idle 2-core machine. Runs already in DIR (a metrics.json present) are not retrained.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out=runs/ct-fm-tables
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) echo "ct-fm-tables.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
noprop() { "$root/noprop" "$@"; }
mkdir -p "$out"
echo "machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores; commit $(git -C "$root" rev-parse --short HEAD)"

common=(--epochs 3 --train-size 10000 --threads 1)

# train NAME ARGS...: trains into $out/NAME unless it is already there.
train() {
  local name="$1"; shift
  if [ -f "$out/$name/metrics.json" ]; then return; fi
  rm -rf "${out:?}/$name"
  noprop train "${common[@]}" "$@" --output "$out/$name" > "$out/$name.train.log" 2>&1 \
    || { echo "training $name failed: see $out/$name.train.log" >&2; exit 1; }
}

# row NAME: validation accuracy recorded by train (kept epoch), ODE from z_0 = 0, image-only readout, learned γ and ᾱ.
row() {
  local name="$1"; shift
  local ev; ev=$(noprop eval --model "$out/$name" --split validation --deterministic --image-only "$@")
  /usr/bin/python3 - "$out/$name" "$ev" <<'EOF'
import csv, json, math, re, sys
run, ev = sys.argv[1], sys.argv[2]
m = json.load(open(f"{run}/metrics.json"))
det = re.search(r"accuracy: ([0-9.]+) %", ev).group(1)
img = re.search(r"image-only \w+ accuracy: ([0-9.]+) %", ev).group(1)
best = m["best_epoch"]; epochs = m["epochs"]
val = f'{m["validation_accuracy"] * 100:.2f} %' + ("" if best == epochs else f" (epoch {best})")
sched = ""
try:
    rows = list(csv.DictReader(open(f"{run}/schedule.csv")))
    def at(t):
        r = min(rows, key=lambda r: abs(float(r["t"]) - t))
        return float(r["gamma"])
    g = [at(0), at(0.5), at(1)]
    a = [1 / (1 + math.exp(at(t))) for t in (0.5, 0.75, 1)]
    sched = " | " + " / ".join(f"{x:.2f}" for x in g) + " | " + " / ".join(f"{x:.3f}" for x in a[:2]) + f" / {a[2]:.4f}"
except FileNotFoundError:
    pass
print(f"| {run.split('/')[-1]} | {val} | {det} % | {img} %{sched} | {m['train_seconds']:.1f} s |")
EOF
}

if [ -z "$only" ] || [ "$only" = weighting ]; then
  echo; echo "## CT weighting × readout, validation split (seeds 1 and 2)"
  for s in 1 2; do
    train ct-paper-s$s --method ct --seed $s --weighting snr-derivative --prediction head
    train ct-s$s --method ct --seed $s
  done
  echo "| run | readout | validation |"
  for s in 1 2; do
    for r in head nearest; do
      echo "| ct-paper-s$s | $r | $(noprop eval --model "$out/ct-paper-s$s" --split validation --prediction $r | sed -n 's/.*accuracy: \([0-9.]* %\).*/\1/p' | head -1) |"
      echo "| ct-s$s | $r | $(noprop eval --model "$out/ct-s$s" --split validation --prediction $r | sed -n 's/.*accuracy: \([0-9.]* %\).*/\1/p' | head -1) |"
    done
  done
fi

if [ -z "$only" ] || [ "$only" = schedule ]; then
  echo; echo "## CT's learnable schedule, validation split"
  train ct-s1 --method ct --seed 1
  train ct-s2 --method ct --seed 2
  train ct-joint-decay-s1 --method ct --seed 1 --schedule-training joint --schedule-weight-decay 0.001
  train ct-joint-decay-s2 --method ct --seed 2 --schedule-training joint --schedule-weight-decay 0.001
  train ct-detached-decay-s1 --method ct --seed 1 --schedule-training detached --schedule-weight-decay 0.001
  train ct-joint-s1 --method ct --seed 1 --schedule-training joint
  train ct-frozen-s1 --method ct --seed 1 --schedule-training frozen
  train ct-paper-s1 --method ct --seed 1 --weighting snr-derivative --prediction head
  echo "| run | validation | ODE (z_0 = 0) | image only | γ(0) / γ(0.5) / γ(1) | ᾱ(0.5) / ᾱ(0.75) / ᾱ(1) | training |"
  for n in ct-joint-decay-s1 ct-joint-decay-s2 ct-detached-decay-s1 ct-joint-s1 ct-s1 ct-s2 ct-frozen-s1; do row $n; done
  row ct-paper-s1 --prediction head
  row ct-paper-s1 --prediction nearest
fi

if [ -z "$only" ] || [ "$only" = sweeps ]; then
  train ct-s1 --method ct --seed 1
  train fm-s1 --method fm --seed 1
  for split in test validation; do
    echo; echo "## Solver sweeps, $split split (accuracy, evaluations per batch)"
    for m in ct-s1 fm-s1; do
      for s in euler heun midpoint rk4; do
        echo "### $m $s"; noprop sweep --model "$out/$m" --split $split --solver $s --steps 2,10,40 --output "$out/$m" | sed -n '/^steps/,/^written/p' | grep -v written
      done
      echo "### $m dopri5"; noprop sweep --model "$out/$m" --split $split --solver dopri5 --steps 40 --output "$out/$m" | sed -n '/^steps/,/^written/p' | grep -v written
    done
  done
fi

if [ -z "$only" ] || [ "$only" = cache ]; then
  train fm-s1 --method fm --seed 1
  echo; echo "## Cached image features, FM Heun-40, 10,000 test images"
  noprop sweep --model "$out/fm-s1" --solver heun --steps 40 --output "$out/fm-s1" | sed -n '/^steps/,/^written/p' | grep -v written
  noprop sweep --model "$out/fm-s1" --solver heun --steps 40 --no-cache --output "$out/fm-s1" | sed -n '/^steps/,/^written/p' | grep -v written
fi
