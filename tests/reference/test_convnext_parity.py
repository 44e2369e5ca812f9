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
RESOLVE = BUILD / "testtools" / "config_resolve"
VITAMIN = BUILD / "vitamin"
TOL = 1e-4
CONFIGS = ["convnext_tiny", "convnext_small", "convnext_base", "convnext_base_w", "convnext_base_w_320",
           "convnext_large", "convnext_large_d", "convnext_large_d_320", "convnext_xlarge", "convnext_xxlarge",
           "convnext_xxlarge_320"]


def _vision(trunk, size):
    return {"timm_model_name": trunk, "timm_model_pretrained": False, "timm_pool": "", "timm_proj": "linear",
            "timm_drop": 0.0, "timm_drop_path": 0.1, "image_size": size}


def _text(width, heads, layers):
    return {"context_length": 77, "vocab_size": 49408, "width": width, "heads": heads, "layers": layers}


# vitamin.c's own ConvNeXt rows, as open_clip configs: the paper's benchmark
# members (each trunk with its size's text tower) and the demo-sized one on
# timm's conv_mlp trunk convnext_atto.
OWN = {
    "ConvNeXt-T": {"embed_dim": 1024, "vision_cfg": _vision("convnext_tiny", 224), "text_cfg": _text(384, 6, 12)},
    "ConvNeXt-B": {"embed_dim": 512, "vision_cfg": _vision("convnext_base", 224), "text_cfg": _text(512, 8, 12)},
    "ConvNeXt-XL": {"embed_dim": 1024, "vision_cfg": _vision("convnext_xlarge", 224), "text_cfg": _text(768, 12, 12)},
    "ConvNeXt-Atto": {"embed_dim": 96, "vision_cfg": _vision("convnext_atto", 32), "text_cfg": _text(96, 2, 2)},
}


def model_config(name):
    import open_clip

    return OWN[name] if name in OWN else open_clip.get_model_config(name)


def build(name, seed=0, device=None):
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    if name in OWN:
        with torch.device(device or "cpu"):
            model = CLIP(**model_config(name))
    else:
        import open_clip

        model = open_clip.create_model(name, pretrained=None, **({"device": device} if device else {}))
    return model if device == "meta" else randomize(model.eval(), seed)


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
                                                  ("convnext_large_d", "bin", True),
                                                  ("ConvNeXt-Atto", "bin", True),
                                                  ("ConvNeXt-Atto", "safetensors", False)])
def test_convnext_matches_open_clip(tmp_path, name, fmt, with_config):
    import open_clip

    model = build(name)
    ckpt = tmp_path / ("open_clip_model.safetensors" if fmt == "safetensors" else "open_clip_pytorch_model.bin")
    save_checkpoint(model, str(ckpt), fmt)  # the state_dict as open_clip saves it
    if with_config:
        (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_config(name)}))
    size = model.visual.image_size[0]
    pixels = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3))
    ids = open_clip.get_tokenizer("ViT-B-32")(["a photo of a cat", "a diagram", "x-ray of a hand"])
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
    from open_clip.model import CLIP
    from safetensors.torch import load_file

    reloaded = CLIP(**cfg["model_cfg"]).eval()  # the written config, not the registered one
    reloaded.load_state_dict(load_file(str(conv)), strict=True)
    assert cfg["model_cfg"]["vision_cfg"]["timm_proj"] == ("mlp" if name.endswith("_d") else "linear")
    with torch.no_grad():
        np.testing.assert_allclose(reloaded.encode_image(pixels).numpy(), img, atol=1e-5, rtol=0)


def test_every_convnext_config_counts_like_open_clip(vitamin_cli):
    """`vitamin info` image and text parameter counts equal open_clip's for
    every registered config and vitamin.c's own rows (models built on the
    meta device)."""
    out = subprocess.run([str(vitamin_cli), "info"], capture_output=True, text=True, timeout=60, check=True).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.lower().startswith("convnext")}
    assert sorted(rows) == sorted(CONFIGS + list(OWN))
    for name in rows:
        m = build(name, device="meta")
        image = sum(p.numel() for p in m.visual.parameters())
        text = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("visual") and n != "logit_scale")
        assert (int(rows[name][8]), int(rows[name][9])) == (image, text), name
    # the paper's published image-tower sizes (M): ConvNeXt-T 28.61, -B 88.09, -XL 350.25
    assert [round(int(rows[n][8]) / 1e6, 2) for n in ("convnext_tiny", "convnext_base", "convnext_xlarge")] == \
        [28.61, 88.09, 350.25]
    # The benchmark members: the image towers as published; the text towers'
    # published 40.44 / 63.43 / 123.65 M are the S / B / L towers projecting to
    # their own width (ViTamin's embed_dim). -B has both; -T and -XL project
    # to 1024, as the image counts need, which adds (1024 - w) * w.
    assert [round(int(rows[n][8]) / 1e6, 2) for n in ("ConvNeXt-T", "ConvNeXt-B", "ConvNeXt-XL")] == \
        [28.61, 88.09, 350.25]
    text = [int(rows[n][9]) for n in ("ConvNeXt-T", "ConvNeXt-B", "ConvNeXt-XL")]
    assert [round(t / 1e6, 2) for t in (text[0] - 640 * 384, text[1], text[2] - 256 * 768)] == [40.44, 63.43, 123.65]


def test_every_timm_convnext_trunk_counts_like_timm(tmp_path, vitamin_cli):
    """The trunks vitamin.c builds from vision_cfg.timm_model_name, the small
    conv_mlp ones included: an open_clip_config.json naming each resolves to
    an image tower with open_clip's parameter count; an unknown trunk's error
    lists the known ones."""
    trunks = ["convnext_atto", "convnext_femto", "convnext_pico", "convnext_nano", "convnext_tiny", "convnext_small",
              "convnext_base", "convnext_large", "convnext_xlarge", "convnext_xxlarge"]
    from open_clip.model import CLIP

    for trunk in trunks:
        cfg = {"embed_dim": 64, "vision_cfg": _vision(trunk, 64), "text_cfg": _text(64, 2, 1)}
        path = tmp_path / f"{trunk}.json"
        path.write_text(json.dumps({"model_cfg": cfg}))
        out = subprocess.run([str(RESOLVE), str(path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        with torch.device("meta"):
            m = CLIP(**cfg)
        image = sum(p.numel() for p in m.visual.parameters())
        assert f"timm={trunk} " in out.stdout and f"image_params={image}\n" in out.stdout, (trunk, image, out.stdout)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model_cfg": {"embed_dim": 64, "vision_cfg": _vision("convnext_zepto_rms", 64)}}))
    out = subprocess.run([str(RESOLVE), str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "convnext_zepto_rms" in out.stderr and "convnext_atto" in out.stderr


def test_convnext_refusals(vitamin_cli, tmp_path):
    """What is not built says so: the intermediate/dense outputs (the
    embeddings are exact)."""
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
