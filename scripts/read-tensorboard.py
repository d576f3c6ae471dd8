#!/usr/bin/env python3
"""Reads TensorBoard event files with TensorBoard's own reader (the
`tensorboard` package from PyPI) and prints what it found as JSON:
{"scalars": {tag: [[step, value], ...]}, "histograms": {tag: [[step, count], ...]}}.

    scripts/read-tensorboard.py RUN_DIR/tensorboard/VARIANT
"""
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

accumulator = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "histograms": 0})
accumulator.Reload()
tags = accumulator.Tags()
out = {
    "scalars": {t: [[e.step, e.value] for e in accumulator.Scalars(t)] for t in tags["scalars"]},
    "histograms": {t: [[e.step, e.histogram_value.num] for e in accumulator.Histograms(t)] for t in tags["histograms"]},
}
json.dump(out, sys.stdout)
