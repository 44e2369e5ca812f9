"""Where the tests find things, and what they may skip.

BUILD honours VITAMIN_BUILD (make BUILD=...), so several builds can be tested
from one checkout. need() skips a test whose precondition is missing, except
under CI (CI=true), where a missing binary, package or privilege is a failure:
a skipped check must never count as passed there. Hardware the CPU lacks (an
ISA path) is not a precondition a CI machine can fix; tests check that with
pytest.skip directly."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD = ROOT / os.environ.get("VITAMIN_BUILD", "build")


def need(ok, reason):
    if ok:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} — CI must run this test: scripts/setup.sh installs what it needs", pytrace=False)
    pytest.skip(reason)
