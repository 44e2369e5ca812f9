#!/usr/bin/env bash
# Installs everything vitamin.c needs on a fresh Debian 12 machine:
#  - Debian -dev libraries the engine links against (image codecs, zlib, utf8proc),
#  - a Python venv (.venv) with the *reference* implementations used only by tests
#    (torch, torchvision, timm, open_clip). The BPE vocabulary is in the repo
#    (share/) and built into the library.
# Idempotent: a second run only checks. Run as root (apt) or with the packages present.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="build-essential pkg-config libjpeg62-turbo-dev libpng-dev libwebp-dev zlib1g-dev libutf8proc-dev clang libclang-rt-14-dev dataset-fashion-mnist gnuplot-nox libopenmpi-dev openmpi-bin libcurl4-openssl-dev iproute2"
missing=""
for p in $APT_PACKAGES; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# Reference venv (tests only). Pinned so parity numbers are reproducible.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  $PY -m venv .venv
fi
if ! .venv/bin/python -c "import torch, torchvision, timm, open_clip, transformers, safetensors, PIL, numpy, ftfy, regex, pytest, skimage, clip_benchmark, webdataset, setuptools" 2>/dev/null; then
  # torch from PyPI brings its CUDA libraries: ~5.5 GB installed, plus the
  # wheels while they unpack. Say so up front rather than die half-way in pip.
  need_gb=9
  free_gb=$(df -Pk . | awk 'NR==2 {print int($4 / 1048576)}')
  if [ "$free_gb" -lt "$need_gb" ]; then
    echo "setup: error: the reference venv needs about ${need_gb} GB free here, df reports ${free_gb} GB;" \
         "free some space (old pytest temp folders live in /tmp/pytest-of-$(id -un)) and rerun" >&2
    exit 1
  fi
  echo "setup: installing the Python reference (torch, timm, open_clip) into .venv"
  .venv/bin/pip install -q --no-cache-dir --upgrade pip >/dev/null
  .venv/bin/pip install -q --no-cache-dir -r scripts/requirements-reference.txt
fi

echo "setup: ok"
