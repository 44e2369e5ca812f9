#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), build, then pytest, which drives the
# C unit-test binaries, the parity tests against open_clip/timm, the CLI error-path
# tests and the fuzz-corpus replays. Ends with pytest's "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
make -j"$(nproc)" WERROR=1 all mpi
# The Python package (pyproject.toml) over the build just made, into the test venv.
.venv/bin/pip install -q --no-build-isolation --no-deps .
# Reference PyTorch: 2 threads, passive OpenMP waits (see README, "Benchmarks").
export OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/python -m pytest -q -p no:cacheprovider tests "$@"
