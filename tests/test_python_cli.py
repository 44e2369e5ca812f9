"""The CLI from Python: `python -m vitamin`, `python -m vitamin.train` and
`vitamin.train(...)` run the packaged `vitamin` binary with its flags; a
failed run raises vitamin.Error carrying the CLI's message."""
import os
import subprocess
import sys

import numpy as np
import pytest

vitamin = pytest.importorskip("vitamin")


def py(*args, **kw):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=300, **kw)


def test_module_entry_points():
    top = py("-m", "vitamin", "--help")
    assert top.returncode == 0 and "usage: vitamin <command>" in top.stdout
    tr = py("-m", "vitamin.train", "--help")
    assert tr.returncode == 0 and "usage: vitamin train" in tr.stdout
    bad = py("-m", "vitamin", "frobnicate")
    assert bad.returncode != 0 and "frobnicate" in bad.stderr
    cb = py("-m", "vitamin.clip_benchmark", "eval", "--help")
    assert cb.returncode == 0 and "vitamin" in cb.stdout  # our model type is among the choices


def write_dataset(tmp_path, n=32):
    from PIL import Image

    rng = np.random.default_rng(0)
    rows = ["filepath\ttitle"]
    for i in range(n):
        p = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(p)
        rows.append(f"{p}\ta photo of thing {i % 4}")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "train.csv"


def test_train_from_python(tmp_path):
    data = write_dataset(tmp_path)
    vitamin.train(train_data=data, model="ViTamin-Tiny", batch_size=8, epochs=1, seed=3, drop_path=0,
                  save_dir=tmp_path / "run", threads=2)
    step = (tmp_path / "run" / "latest").read_text().strip()
    ckpt = tmp_path / "run" / step / "open_clip_model.safetensors"
    assert ckpt.exists()
    model = vitamin.create_model(str(ckpt.parent))
    assert model.name == "ViTamin-Tiny"
    # the same run twice gives the same weights (seeded), through the word form too
    vitamin.train(["--train-data", str(data), "--model", "ViTamin-Tiny", "--batch-size", "8", "--epochs", "1",
                   "--seed", "3", "--drop-path", "0", "--save-dir", str(tmp_path / "run2"), "--threads", "1"])
    other = tmp_path / "run2" / step / "open_clip_model.safetensors"
    assert other.read_bytes() == ckpt.read_bytes()
    with pytest.raises(vitamin.Error, match="--bogus-flag"):
        vitamin.train(train_data=data, bogus_flag=3)
    with pytest.raises(vitamin.Error, match="missing.csv"):
        vitamin.train(train_data=tmp_path / "missing.csv", model="ViTamin-Tiny")
