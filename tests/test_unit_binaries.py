"""Runs every C unit-test binary (build/tests/test_*) as one pytest case each."""
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BINARIES = sorted((ROOT / "build" / "tests").glob("test_*"))


@pytest.mark.parametrize("binary", BINARIES, ids=[b.name for b in BINARIES])
def test_unit_binary(binary):
    proc = subprocess.run([str(binary)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
