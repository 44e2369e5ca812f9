"""SwiGLU as an MLP variant (the model-definition issue's worked example): a
ViTamin whose transformer blocks gate with SiLU instead of GELU. No released
model uses it; timm's own GeGluMlp with act_layer="silu" is exactly that MLP,
so the reference is ViTamin-Tiny built by timm/open_clip with each block's
gate swapped, saved with the open_clip_config.json vitamin.c writes
(vitamin_cfg.mlp = "swiglu"). Tolerance: unit-norm embeddings, max abs error
<= 1e-4, as every parity test."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from refmodel import build_model, random_pixels, random_tokens, save_checkpoint  # noqa: E402
from tiny_models import register  # noqa: E402
from vtpaths import BUILD  # noqa: E402

VITAMIN = str(BUILD / "vitamin")
TOOL = str(BUILD / "testtools" / "train_ckpt_tool")


def normalize(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_swiglu_model_embeds_like_timm(tmp_path):
    register()
    model = build_model("ViTamin-Tiny", seed=5)
    geglu = build_model("ViTamin-Tiny", seed=5)
    with torch.no_grad():  # a louder MLP branch, so that the gate's choice shows in the embedding
        for m in (model, geglu):
            for blk in m.visual.trunk.blocks:
                blk.mlp.w2.weight.mul_(8.0)
    for blk in model.visual.trunk.blocks:
        blk.mlp.act = torch.nn.SiLU()
    save_checkpoint(model, str(tmp_path / "open_clip_model.bin"))
    proc = subprocess.run([TOOL, "config", "--model", "ViTamin-Tiny", "--out", str(tmp_path / "open_clip_config.json")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads((tmp_path / "open_clip_config.json").read_text())
    assert cfg["vitamin_cfg"]["mlp"] == "geglu"
    cfg["vitamin_cfg"]["mlp"] = "swiglu"
    (tmp_path / "open_clip_config.json").write_text(json.dumps(cfg))
    pixels = random_pixels(model, 3, seed=2)
    texts, ids = random_tokens(2, seed=2)
    pix = tmp_path / "pixels.f32"
    pixels.numpy().astype(np.float32).tofile(pix)
    ids_path = tmp_path / "ids.i32"
    ids.numpy().astype(np.int32).tofile(ids_path)
    out = tmp_path / "trace"
    out.mkdir()
    proc = subprocess.run([str(BUILD / "testtools" / "vt_trace"), str(tmp_path / "open_clip_model.bin"), str(out),
                           "--pixels", str(pix), "3", "--tokens", str(ids_path), "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    with torch.no_grad():
        ref = model.encode_image(pixels).numpy()
        geglu_features = geglu.encode_image(pixels).numpy()  # same weights, GELU gates
    got = np.load(out / "image_features.npy")
    err = np.abs(normalize(got) - normalize(ref)).max()
    assert err <= 1e-4, f"SwiGLU image embeddings differ by {err}"
    # The variant is really in use: the GeGLU model's embeddings are far outside the tolerance.
    assert np.abs(normalize(got) - normalize(geglu_features)).max() > 10 * 1e-4
    print(f"SwiGLU vs timm: {err:.2e}")
    # The same config written back keeps the variant, and the name says it for custom sizes.
    info = subprocess.run([VITAMIN, "info", "--model-name", "ViTamin-C16-N2-32-SwiGLU"], capture_output=True, text=True)
    assert info.returncode == 0 and "ViTamin-C16-N2-32-SwiGLU" in info.stdout, info.stderr


def test_swiglu_model_trains(tmp_path):
    """A custom SwiGLU model trains (loss falls) and its checkpoint says swiglu."""
    from PIL import Image

    rows = ["filepath\ttitle"]
    for i in range(8):
        Image.new("RGB", (32, 32), (30 * i, 200 - 20 * i, 90)).save(tmp_path / f"{i}.png")
        rows.append(f"{tmp_path / f'{i}.png'}\tcolour number {i}")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    proc = subprocess.run([VITAMIN, "train", "--model", "ViTamin-C16-N2-32-SwiGLU", "--train-data",
                           str(tmp_path / "train.csv"), "--batch-size", "8", "--steps", "6", "--warmup", "0", "--lr",
                           "1e-3", "--save-dir", str(tmp_path / "run"), "--log", str(tmp_path / "log.jsonl")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    losses = [json.loads(line)["loss"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0]
    ckpt = tmp_path / "run" / (tmp_path / "run" / "latest").read_text().strip()
    cfg = json.loads((ckpt / "open_clip_config.json").read_text())
    assert cfg["vitamin_cfg"]["mlp"] == "swiglu" and cfg["vitamin_cfg"]["name"] == "ViTamin-C16-N2-32-SwiGLU"
    info = subprocess.run([VITAMIN, "info", "-m", str(ckpt)], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0 and "ViTamin-C16-N2-32-SwiGLU" in info.stdout, info.stderr
