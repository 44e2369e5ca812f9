"""Checkpoints move between world sizes: a run saved by 2 ranks (ZeRO-1 or
not) resumes on 1 process and on 4 ranks with the same global batch, and ends
where the uninterrupted single-process run ends (tolerances as in
test_mpi.py); a different global batch is refused with a message."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import test_mpi as tm  # noqa: E402
from test_mpi import mpi_build  # noqa: E402,F401  (fixture)

from test_mpi import _mpirun_present  # noqa: E402,F401  (autouse: needs mpirun)


def _train(ranks, exe, data, save, batch, steps, *extra):
    args = [exe, "train", "--model", "ViTamin-Tiny", "--train-data", data / "train.csv", "--batch-size", batch,
            "--steps", steps, "--lr", tm.LR, "--warmup", 1, "--seed", 3, "--save-dir", save, "--threads", 1,
            "--workers", 1, "--gather-with-grad", "--local-loss", *extra]
    if ranks:
        return tm.mpirun(ranks, *args, check=False)
    return subprocess.run(list(map(str, args)), capture_output=True, text=True, env=tm.ENV, timeout=300)


def _final(save):
    from safetensors.numpy import load_file

    return load_file(str(save / (save / "latest").read_text().strip() / "open_clip_model.safetensors"))


@pytest.mark.parametrize("zero1", [False, True])
def test_resume_on_other_world_sizes(mpi_build, build_dir, tmp_path_factory, tmp_path, zero1):
    data = tm._shapes(tmp_path_factory)
    z = ["--zero1"] if zero1 else []
    ref = tmp_path / "ref"
    p = _train(None, build_dir / "vitamin", data, ref, 16, tm.STEPS)
    assert p.returncode == 0, p.stderr
    reference = _final(ref)
    for later_ranks, later_batch in ((0, 16), (4, 4)):
        save = tmp_path / f"to{later_ranks}"
        p = _train(2, mpi_build / "vitamin", data, save, 8, 2, *z)
        assert p.returncode == 0, p.stdout + p.stderr
        exe = mpi_build / "vitamin" if later_ranks else build_dir / "vitamin"
        p = _train(later_ranks, exe, data, save, later_batch, tm.STEPS, "--resume", "latest", *z)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "resumed from" in p.stdout + p.stderr
        tm.assert_same(([0.0], _final(save)), ([0.0], reference))
    # Another global batch would silently change the data order: refused.
    p = _train(None, build_dir / "vitamin", data, save, 8, tm.STEPS + 2, "--resume", "latest")
    assert p.returncode == 1 and "global batch" in p.stderr and "--batch-size" in p.stderr
