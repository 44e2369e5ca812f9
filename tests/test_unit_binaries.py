"""Runs every C unit-test binary (build/tests/test_*, from tests/unit/<room>/,
the rooms mirroring src/) as one pytest case each,
and the kernel tests once more with VITAMIN_ISA=scalar: kernels that choose
their path themselves (LayerNorm) then run their portable code."""
import os
import pathlib
import subprocess

import pytest
from vtpaths import BUILD  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
# One per source (tests/unit/<room>/test_*.c): a test whose binary was not
# built fails instead of going unnoticed, and a stale binary of a removed
# test is not run.
BINARIES = sorted(BUILD / "tests" / p.stem for p in ROOT.glob("tests/unit/*/test_*.c"))


@pytest.mark.parametrize("binary", BINARIES, ids=[b.name for b in BINARIES])
def test_unit_binary(binary):
    proc = subprocess.run([str(binary)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kernels_forced_scalar():
    proc = subprocess.run([str(BUILD / "tests" / "test_kernels")], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, VITAMIN_ISA="scalar"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
