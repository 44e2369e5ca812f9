"""Replays every saved fuzz corpus (tests/fuzz/corpus/<target>/) through its
libFuzzer target built with AddressSanitizer + UBSan (`make fuzz`). A crash,
leak or sanitizer report fails the test. Long fuzzing runs are opt-in:
  make fuzz && build/fuzz/fuzz_checkpoint -max_total_time=1800 tests/fuzz/corpus/checkpoint"""
import os
import pathlib
import subprocess

import pytest
from vtpaths import BUILD  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGETS = sorted(p.stem for p in (ROOT / "tests" / "fuzz").glob("fuzz_*.c"))


@pytest.fixture(scope="module")
def fuzz_build():
    proc = subprocess.run(["make", "-j2", "fuzz"], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.parametrize("target", TARGETS)
def test_replay_corpus(fuzz_build, target, tmp_path):
    corpus = ROOT / "tests" / "fuzz" / "corpus" / target[len("fuzz_"):]
    assert corpus.is_dir() and any(corpus.iterdir()), f"no saved corpus for {target} in {corpus}"
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1", VITAMIN_BPE_VOCAB=str(ROOT / "share" / "bpe_simple_vocab_16e6.txt.gz"))
    # Artifacts (crash-*, oom-*) go to the test's tmp dir, not the repo.
    # libFuzzer's RSS limit reads getrusage's ru_maxrss, which survives exec:
    # started from this pytest process (GBs after the parity tests), the replay
    # would "use" the parent's peak. So the RSS check is off and a 2 GB cap on
    # any single allocation stands in for it; crashes, sanitizer reports and
    # leaks still fail the test.
    proc = subprocess.run([str(BUILD / "fuzz" / target), "-runs=0", "-rss_limit_mb=0", "-malloc_limit_mb=2048",
                           f"-artifact_prefix={tmp_path}/", str(corpus)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-5000:]
