#!/usr/bin/env bash
# GPU check: a CIFAR-shaped search generation (ng.autofit.fit, population 8, one epoch per generation,
# 10,000 random 32x32x3 images, no downloads) vs the sum of its members' steady-state epochs in a hand-written
# Flax loop; target ratio <= 1.5. Sized for well under 5 minutes on one GPU: the Python side starts no generation
# that would pass 240 s (--budget), and `timeout` stops it at 290 s (it then prints the finished generations).
# Extra arguments go to gpu_check.py (e.g. --population 16; --tiny is a CPU smoke test whose ratios mean nothing).
# The last line printed is one JSON object: device, versions, ratio per generation, median and maximum.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
exec timeout -k 8 290 "$PYTHON" benchmarks/gpu_check.py "$@"
