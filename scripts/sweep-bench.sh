#!/usr/bin/env bash
# Points per hour of a sweep against the same points as separate
# `initscope run` processes, measured in one run on this machine.
#
#   scripts/sweep-bench.sh [THREADS]     (default: every core)
#
# The sweep: the seed network (784-512-256-128-64-10, ReLU), Kaiming
# against N(0, 0.001), one epoch of MNIST, over two learning rates and two
# seeds (4 points, 8 trainings). The separate runs train the same points
# one process after another, each with the same threads (its two variants
# side by side), each loading the data and drawing its report as `run`
# does. Prints both wall times, the points per hour, their ratio, and the
# sweep's per-point overhead (wall time not spent training).
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-$(nproc)}
cargo build --release --locked -q
bin=target/release/initscope
$bin data fetch mnist >/dev/null
work=$(mktemp -d)
[ -n "${KEEP:-}" ] && echo "keeping $work"
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

{
  $bin presets --show seed | sed -e 's/^epochs = .*/epochs = 1/' -e 's/^log_every = .*/log_every = 0/'
  printf '\n[sweep]\n"optimizer.lr" = [0.05, 0.1]\n"seed" = [1, 2]\n'
} > "$work/bench.toml"

now() { date +%s.%N; }
start=$(now)
$bin sweep "$work/bench.toml" --quiet --threads "$threads" --out "$work/sweep" >/dev/null
sweep_wall=$(python3 -c "print($(now) - $start)")

start=$(now)
for point in "$work"/sweep/runs/p*; do
  $bin run "$point/experiment.toml" --quiet --threads "$threads" --out "$work/runs/$(basename "$point")" >/dev/null
done
runs_wall=$(python3 -c "print($(now) - $start)")

lanes=$(( threads < 4 ? threads : 4 ))
python3 - "$work/sweep" "$sweep_wall" "$runs_wall" "$lanes" <<'EOF'
import csv, glob, os, sys
sweep_dir, sweep, runs, lanes = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
points = sorted(glob.glob(os.path.join(sweep_dir, "runs", "p*")))
# A point lasts from its settings file to its last summary.
inside = sum(os.path.getmtime(f"{p}/summary.json") - os.path.getmtime(f"{p}/experiment.toml") for p in points)
training = sum(float(r["seconds"]) for r in csv.DictReader(open(os.path.join(sweep_dir, "sweep.csv"))))
n = len(points)
print(f"points: {n}, {lanes} lanes")
print(f"sweep:          {sweep:7.1f} s  {3600 * n / sweep:7.1f} points/hour")
print(f"separate runs:  {runs:7.1f} s  {3600 * n / runs:7.1f} points/hour")
print(f"ratio (sweep / separate runs, points per hour): {runs / sweep:.2f}")
point = inside / n
outside = (sweep * lanes - inside) / n
print(f"a point: {point:.2f} s, of which training and evaluation {training / n:.2f} s "
      f"(initial weights, records and predictions {100 * (point - training / n) / point:.1f} %)")
print(f"the sweep's own overhead (start, data loading, table, report, idle lanes): "
      f"{outside:.2f} s of a lane per point, {100 * outside / point:.1f} % of a point")
EOF
