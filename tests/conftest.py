"""Shared fixtures for the Python-driven tests (reference parity, CLI, fuzz replay)."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# VITAMIN_BUILD picks another build directory (make BUILD=...), so that several
# people can build and test in one checkout without overwriting each other.
BUILD = ROOT / os.environ.get("VITAMIN_BUILD", "build")
VITAMIN = BUILD / "vitamin"

# The reference runs on 2 threads, like the engine's default on this machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def build_dir():
    return BUILD


@pytest.fixture(scope="session")
def vitamin_cli():
    assert VITAMIN.exists(), "build/vitamin missing: run `make` first"
    return str(VITAMIN)
