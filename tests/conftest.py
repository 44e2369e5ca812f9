"""Shared fixtures for the Python-driven tests (reference parity, CLI, fuzz replay)."""
import os
import pathlib
import shutil

import pytest

from vtpaths import BUILD, ROOT

# VITAMIN_BUILD picks another build directory (make BUILD=...), so that several
# people can build and test in one checkout without overwriting each other.
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
    assert VITAMIN.exists(), f"{VITAMIN} missing: run `make` first"
    return str(VITAMIN)


# Free each passing test's tmp_path as soon as it ends, not at the end of the
# session: the parity tests alone would otherwise hold ~20 GB at the peak.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, "report_" + report.when, report)
    return report


@pytest.fixture(autouse=True)
def _free_tmp_path_of_passed_test(request):
    path = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    report = getattr(request.node, "report_call", None)
    if path is not None and report is not None and report.passed:
        shutil.rmtree(path, ignore_errors=True)
