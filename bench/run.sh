#!/usr/bin/env bash
# The benchmark, from a fresh clone: set-up, benchmark-only references (ONNX
# Runtime, OpenVINO, matplotlib), build, then bench/run.py with any arguments
# (default: ViTamin-S, -B, ViT-B/32 and ViT-B/16, 1 thread and all cores, every engine).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/pip install -q -r scripts/requirements-bench.txt
make -j"$(nproc)" all >/dev/null
exec .venv/bin/python bench/run.py "$@"
