"""Activation recomputation (clip_train_options.recompute, open_clip's
--grad-checkpointing): the backward re-runs each block's forward instead of
keeping its activations, and must give bit-identical results — losses,
features, every gradient and the weights after AdamW steps — to the path that
keeps everything. Drop-path is on (0.5), so the recomputed blocks must also
reuse the same per-sample masks; micro-batching (accum) re-runs the forward
per micro-batch on top. Also `vitamin train --grad-checkpointing` gives the
same checkpoint as without."""
import subprocess

import numpy as np
import pytest
import torch

import refmodel
import tiny_models

torch.set_num_threads(1)

OUTPUTS = ["grads.safetensors", "features.npy", "losses.npy", "final.safetensors"]


def _inputs(tmp_path, n, size):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "pixels.npy", rng.standard_normal((n, 3 * size * size)).astype(np.float32))
    _, ids = refmodel.random_tokens(n, seed=1)
    np.save(tmp_path / "tokens.npy", ids.numpy().astype(np.float32))


def _run(build_dir, tmp_path, tag, name, n, steps, micro, *extra):
    out = tmp_path / tag
    out.mkdir()
    # CKPT "-": open_clip's fresh init (seed 0), so ViTamin-S needs no reference model.
    cmd = [str(build_dir / "testtools" / "train_step_check"), name, "-", str(tmp_path / "pixels.npy"),
           str(tmp_path / "tokens.npy"), str(out), str(steps), "1e-3", "0.2", "1", str(micro), "1.0",
           "--drop-path", "0.5", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out


# Tiny whole-batch and in micro-batches (5 = 4 + 1), Tiny with the trunk's top
# only trainable (the backward stops early), ViTamin-S (MBConv stride/expand
# variants, 14 blocks) at a small batch.
@pytest.mark.parametrize("name,size,n,steps,micro,extra", [
    ("ViTamin-Tiny", 32, 5, 3, 5, []),
    ("ViTamin-Tiny", 32, 5, 3, 4, []),
    ("ViTamin-Tiny", 32, 5, 2, 5, ["--lock-image", "2", "--lock-text", "2"]),
    ("ViTamin-S", 224, 2, 1, 2, []),
])
def test_recompute_is_bit_identical(tmp_path, build_dir, name, size, n, steps, micro, extra):
    _inputs(tmp_path, n, size)
    keep = _run(build_dir, tmp_path, "keep", name, n, steps, micro, *extra)
    again = _run(build_dir, tmp_path, "recompute", name, n, steps, micro, "--recompute", *extra)
    for f in OUTPUTS:
        assert (keep / f).read_bytes() == (again / f).read_bytes(), f"{f} differs with --recompute"
    assert np.isfinite(np.load(keep / "losses.npy")).all()
    if name == "ViTamin-Tiny" and micro == n and not extra:
        # Drop-path is really active here (else the masks would be untested): without it the losses differ.
        plain = _run(build_dir, tmp_path, "no_drop", name, n, steps, micro, "--drop-path", "0")
        assert (plain / "losses.npy").read_bytes() != (keep / "losses.npy").read_bytes()


def test_cli_grad_checkpointing_same_checkpoint(tmp_path, vitamin_cli):
    from PIL import Image

    rng = np.random.default_rng(0)
    with open(tmp_path / "train.csv", "w") as f:
        f.write("filepath\ttitle\n")
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
            f.write(f"{i}.png\tpicture number {i}\n")
    saved = []
    for tag, extra in [("keep", []), ("recompute", ["--grad-checkpointing"])]:
        save = tmp_path / tag
        cmd = [vitamin_cli, "train", "--model", "ViTamin-Tiny", "--train-data", str(tmp_path / "train.csv"),
               "--batch-size", "4", "--accum-freq", "2", "--steps", "2", "--warmup", "1", "--lr", "1e-3",
               "--seed", "3", "--save-dir", str(save), *extra]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        saved.append((save / (save / "latest").read_text().strip() / "open_clip_model.safetensors").read_bytes())
    assert saved[0] == saved[1]
