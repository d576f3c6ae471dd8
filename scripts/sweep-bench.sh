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
trap 'rm -rf "$work"' EXIT

{
  $bin presets --show seed | sed -e 's/^epochs = .*/epochs = 1/' -e 's/^log_every = .*/log_every = 0/'
  printf '\n[sweep]\n"optimizer.lr" = [0.05, 0.1]\n"seed" = [1, 2]\n'
} > "$work/bench.toml"

now() { date +%s.%N; }
start=$(now)
$bin sweep "$work/bench.toml" --quiet --threads "$threads" --out "$work/sweep" >/dev/null
sweep_wall=$(echo "$(now) - $start" | bc -l)

start=$(now)
for point in "$work"/sweep/runs/p*; do
  $bin run "$point/experiment.toml" --quiet --threads "$threads" --out "$work/runs/$(basename "$point")" >/dev/null
done
runs_wall=$(echo "$(now) - $start" | bc -l)

points=$(ls -d "$work"/sweep/runs/p* | wc -l)
# Training seconds of every variant (the sweep table's seconds column).
train=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") c = i; next } { s += $c } END { print s }' \
  "$work/sweep/sweep.csv")
lanes=$(( threads < points ? threads : points ))
python3 - "$points" "$sweep_wall" "$runs_wall" "$train" "$lanes" <<'EOF'
import sys
points, sweep, runs, train, lanes = int(sys.argv[1]), *map(float, sys.argv[2:5]), int(sys.argv[5])
print(f"points: {points}, threads: {lanes} lanes")
print(f"sweep:          {sweep:7.1f} s  {3600 * points / sweep:7.1f} points/hour")
print(f"separate runs:  {runs:7.1f} s  {3600 * points / runs:7.1f} points/hour")
print(f"ratio (sweep / separate runs, points per hour): {runs / sweep:.2f}")
per_point = sweep * lanes / points
training = train / points
print(f"per point: {per_point:.2f} s of a lane, of which training {training:.2f} s; "
      f"overhead {100 * (per_point - training) / training:.1f} % of a point")
EOF
