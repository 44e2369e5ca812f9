"""The suite's disk hygiene (tests/conftest.py): a passing test's tmp_path is
deleted when the test ends. A full run writes ~20 GB of checkpoints; kept, they
once filled the disk that CI runs on. Relies on pytest running a file's tests
in order."""
_seen = []


def test_writes_into_tmp_path(tmp_path):
    (tmp_path / "checkpoint.bin").write_bytes(b"x" * 4096)
    _seen.append(tmp_path)


def test_previous_tmp_path_is_gone():
    assert _seen, "test_writes_into_tmp_path did not run first"
    assert not _seen[0].exists()
