"""ConvNeXt towers (open_clip's convnext_* configs: timm convnext.py under
open_clip's TimmModel) against open_clip on random weights: every stage's
activations and the embeddings, from open_clip state dicts with and without
open_clip_config.json, the mlp head (convnext_large_d), and the parameter
counts of every registered config. Tolerance as the ViTamin/ViT parity suite:
1e-4, on unit-norm embeddings and relative to each activation's magnitude
(measured ~1e-6)."""
import json
import subprocess

import numpy as np
import pytest
import torch

from refmodel import randomize, save_checkpoint
from vtpaths import BUILD

TRACE = BUILD / "testtools" / "vt_trace"
VITAMIN = BUILD / "vitamin"
TOL = 1e-4
CONFIGS = ["convnext_tiny", "convnext_small", "convnext_base", "convnext_base_w", "convnext_base_w_320",
           "convnext_large", "convnext_large_d", "convnext_large_d_320", "convnext_xlarge", "convnext_xxlarge",
           "convnext_xxlarge_320"]


def build(name, seed=0):
    import open_clip

    torch.manual_seed(seed)
    return randomize(open_clip.create_model(name, pretrained=None).eval(), seed)


def reference(model, pixels, ids):
    """Embeddings and the NHWC stage maps the C trace reports."""
    acts = {}
    trunk = model.visual.trunk

    def keep(name):
        def hook(_m, _i, out):
            acts[name] = out.detach().permute(0, 2, 3, 1).contiguous().numpy()
        return hook

    handles = [trunk.stem.register_forward_hook(keep("stem"))]
    for s, stage in enumerate(trunk.stages):
        handles.append(stage.register_forward_hook(keep(f"stage{s}")))
    with torch.no_grad():
        img = model.encode_image(pixels).numpy()
        txt = model.encode_text(ids).numpy()
        acts["pooled"] = trunk.forward_head(trunk.forward_features(pixels), pre_logits=True).numpy()
    for h in handles:
        h.remove()
    return img, txt, acts


def normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@pytest.mark.parametrize("name,fmt,with_config", [("convnext_tiny", "bin", True),
                                                  ("convnext_base", "safetensors", False),
                                                  ("convnext_large_d", "bin", True)])
def test_convnext_matches_open_clip(tmp_path, name, fmt, with_config):
    import open_clip

    model = build(name)
    ckpt = tmp_path / ("open_clip_model.safetensors" if fmt == "safetensors" else "open_clip_pytorch_model.bin")
    save_checkpoint(model, str(ckpt), fmt)  # the state_dict as open_clip saves it
    if with_config:
        (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": open_clip.get_model_config(name)}))
    size = model.visual.image_size[0]
    pixels = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))
    ids = open_clip.get_tokenizer(name)(["a photo of a cat", "a diagram", "x-ray of a hand"])
    img, txt, acts = reference(model, pixels, ids)
    pixels.numpy().tofile(tmp_path / "p.f32")
    ids.numpy().astype(np.int32).tofile(tmp_path / "ids.i32")
    out = tmp_path / "trace"
    out.mkdir()
    proc = subprocess.run([str(TRACE), str(ckpt), str(out), "--pixels", str(tmp_path / "p.f32"), "2", "--tokens",
                           str(tmp_path / "ids.i32"), "3"], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == name
    if not with_config:  # the architecture came from the tensor shapes, and the user hears so
        info = subprocess.run([str(VITAMIN), "info", "-m", str(ckpt)], capture_output=True, text=True, timeout=600)
        assert info.returncode == 0 and "inferred from the tensor shapes" in info.stderr, info.stderr
    worst = {}
    for key, ref in acts.items():
        got = np.load(out / f"{key}.npy").reshape(ref.shape)
        worst[key] = float(np.abs(got - ref).max()) / max(1.0, float(np.abs(ref).max()))
    assert not {k: v for k, v in worst.items() if v > TOL}, worst
    assert np.abs(normalize(np.load(out / "image_features.npy")) - normalize(img)).max() <= TOL
    assert np.abs(normalize(np.load(out / "text_features.npy")) - normalize(txt)).max() <= TOL
    # `vitamin convert` writes a checkpoint + config that open_clip loads strictly and embeds the same
    conv = tmp_path / "converted" / "open_clip_model.safetensors"
    conv.parent.mkdir()
    proc = subprocess.run([str(VITAMIN), "convert", "-m", str(ckpt), "-o", str(conv)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads((conv.parent / "open_clip_config.json").read_text())
    reloaded = open_clip.create_model(name, pretrained=str(conv)).eval()
    assert cfg["model_cfg"]["vision_cfg"]["timm_proj"] == ("mlp" if name.endswith("_d") else "linear")
    with torch.no_grad():
        np.testing.assert_allclose(reloaded.encode_image(pixels).numpy(), img, atol=1e-5, rtol=0)


def test_every_convnext_config_counts_like_open_clip(vitamin_cli):
    """`vitamin info` image and text parameter counts equal open_clip's for
    every registered config (models built on the meta device)."""
    import open_clip

    out = subprocess.run([str(vitamin_cli), "info"], capture_output=True, text=True, timeout=60, check=True).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("convnext_")}
    assert sorted(rows) == sorted(CONFIGS)
    for name in CONFIGS:
        m = open_clip.create_model(name, device="meta")
        image = sum(p.numel() for p in m.visual.parameters())
        text = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("visual") and n != "logit_scale")
        assert (int(rows[name][8]), int(rows[name][9])) == (image, text), name
    # the paper's published image-tower sizes (M): ConvNeXt-T 28.61, -B 88.09, -XL 350.25
    assert [round(int(rows[n][8]) / 1e6, 2) for n in ("convnext_tiny", "convnext_base", "convnext_xlarge")] == \
        [28.61, 88.09, 350.25]


def test_convnext_refusals(vitamin_cli, tmp_path):
    """What is not built yet says so: training, and the intermediate/dense
    outputs (the embeddings are exact)."""
    proc = subprocess.run([str(vitamin_cli), "train", "--model", "convnext_tiny", "--train-data", str(tmp_path / "x.csv")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "ConvNeXt" in proc.stderr and "not implemented" in proc.stderr
    vitamin = pytest.importorskip("vitamin")
    model = build("convnext_tiny")
    save_checkpoint(model, str(tmp_path / "open_clip_pytorch_model.bin"))
    vm = vitamin.create_model(str(tmp_path))
    x = np.zeros((1, 3, 224, 224), np.float32)
    for call in (lambda: vm.visual.forward_intermediates(x), lambda: vm.dense_embeddings(x),
                 lambda: vm.patch_features(x)):
        with pytest.raises(vitamin.InputError, match="not available for ConvNeXt"):
            call()
    assert vm.encode_image(x).shape == (1, 1024)
