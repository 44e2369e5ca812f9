"""open_clip's ViT CLIP models (VisionTransformer image tower, open_clip
transformer.py) against vitamin.c on random weights (fixed seed): every
parameter randomised (LayerNorm affines, biases, LayerScale gammas too), so a
loader that drops or swaps a tensor cannot pass.

Compared, as the ViTamin parity tests do (tests/reference/test_model_parity.py):
  * unit-norm image and text embeddings: max abs error <= 1e-4 (fp32);
  * the tokens after ln_pre and every resblock's output: max abs error <= 1e-4
    relative to the activation's scale (max |ref|, at least 1).
CI covers a QuickGELU model, a -plus model at 240 px, a LayerScale -alt model,
avg pooling with final_ln_after_pool and no_ln_pre (a custom config, given to
both sides as open_clip_config.json), shapes-only loading, and ViT-L/14 at
336 px; VITAMIN_FULL_SWEEP=1 adds every ViT config vitamin.c registers."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from vtpaths import BUILD  # noqa: E402
from refmodel import randomize  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
TRACE = BUILD / "testtools" / "vt_trace"
VITAMIN = BUILD / "vitamin"
TOL = 1e-4

# A ViT small enough for quick cases, and its avg-pool variant.
TINY_VIT = {"embed_dim": 64, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32,
                                             "patch_size": 8},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
TINY_AVG = json.loads(json.dumps(TINY_VIT))
TINY_AVG["vision_cfg"].update(pool_type="avg", final_ln_after_pool=True, no_ln_pre=True, mlp_ratio=2.5,
                              ls_init_value=0.1)
TINY_AVG["quick_gelu"] = True


def build(name_or_cfg, seed=0):
    import open_clip

    torch.manual_seed(seed)
    if isinstance(name_or_cfg, dict):
        from open_clip.model import CLIP
        cfg = dict(name_or_cfg)
        quick = cfg.pop("quick_gelu", False)
        model = CLIP(**cfg, quick_gelu=quick)
    else:
        model = open_clip.create_model(name_or_cfg, pretrained=None)
    model.eval()
    return randomize(model, seed)


def reference(model, pixels, ids):
    acts = {}

    def keep(name):
        def hook(_m, _i, out):
            acts[name] = out.detach().clone().numpy()
        return hook

    vis = model.visual
    handles = [vis.ln_pre.register_forward_hook(keep("tokens"))]
    for i, blk in enumerate(vis.transformer.resblocks):
        handles.append(blk.register_forward_hook(keep(f"block{i}")))
    with torch.no_grad():
        img = model.encode_image(pixels).numpy()
        txt = model.encode_text(ids).numpy()
    for h in handles:
        h.remove()
    return img, txt, acts


def normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def run_case(tmp_path, model, model_name=None, config=None, n_images=2, fmt="bin"):
    import open_clip

    sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    ckpt = tmp_path / ("open_clip_model.safetensors" if fmt == "safetensors" else "open_clip_pytorch_model.bin")
    if fmt == "safetensors":
        from safetensors.torch import save_file
        save_file(sd, str(ckpt))
    else:
        torch.save(sd, ckpt)
    if config is not None:
        (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": config}))
    size = model.visual.image_size[0]
    pixels = torch.randn(n_images, 3, size, size, generator=torch.Generator().manual_seed(3))
    tok = open_clip.get_tokenizer("ViT-B-32")
    ids = tok(["a photo of a cat", "a diagram", "x-ray of a hand with many balloons in the sky"])
    img, txt, acts = reference(model, pixels, ids)
    pixels.numpy().astype(np.float32).tofile(tmp_path / "p.f32")
    ids.numpy().astype(np.int32).tofile(tmp_path / "ids.i32")
    cmd = [str(TRACE), str(ckpt), str(tmp_path), "--pixels", str(tmp_path / "p.f32"), str(n_images),
           "--tokens", str(tmp_path / "ids.i32"), str(len(ids))]
    if model_name:
        cmd += ["--model", model_name]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    worst = {}
    for name, ref in acts.items():
        got = np.load(tmp_path / f"{name}.npy").reshape(ref.shape)
        worst[name] = float(np.abs(got - ref).max()) / max(1.0, float(np.abs(ref).max()))
    bad = {k: v for k, v in worst.items() if v > TOL}
    assert not bad, f"activations over tolerance: {bad}"
    err_img = np.abs(normalize(np.load(tmp_path / "image_features.npy")) - normalize(img)).max()
    err_txt = np.abs(normalize(np.load(tmp_path / "text_features.npy")) - normalize(txt)).max()
    assert err_img <= TOL and err_txt <= TOL, (err_img, err_txt)
    return proc


CI_NAMED = [("ViT-B-32", "bin"), ("ViT-B-32-quickgelu", "safetensors"), ("ViT-B-16-plus-240", "bin"),
            ("ViT-M-16-alt", "safetensors"), ("ViT-L-14-336", "safetensors")]
if os.environ.get("VITAMIN_FULL_SWEEP") == "1":
    out = subprocess.run([str(VITAMIN), "info"], capture_output=True, text=True).stdout
    CI_NAMED = [(line.split()[0], "bin") for line in out.splitlines() if line.startswith("ViT-")]


@pytest.mark.parametrize("name,fmt", CI_NAMED, ids=[n for n, _ in CI_NAMED])
def test_named_config(tmp_path, name, fmt):
    run_case(tmp_path, build(name), model_name=name, n_images=2 if "L-14" not in name else 1, fmt=fmt)


def test_open_clip_config_json_avg_pool_layer_scale_quickgelu(tmp_path):
    """Architecture from open_clip_config.json alone: avg pooling, ln_post
    after the pool, no ln_pre, mlp_ratio 2.5, LayerScale, QuickGELU."""
    run_case(tmp_path, build(TINY_AVG), config=TINY_AVG)


def test_architecture_from_shapes(tmp_path):
    """No config: a ViT whose shapes match no open_clip config (head width
    64 assumed, so the tiny model here uses it) still loads, with a note."""
    cfg = json.loads(json.dumps(TINY_VIT))
    cfg["vision_cfg"]["head_width"] = 64
    cfg["text_cfg"]["heads"] = 1
    run_case(tmp_path, build(cfg))
    info = subprocess.run([str(VITAMIN), "info", "-m", str(tmp_path / "open_clip_pytorch_model.bin")],
                          capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    assert "note:" in info.stderr + info.stdout and "head width 64" in info.stderr + info.stdout


def test_config_that_disagrees_with_the_weights(tmp_path):
    model = build(TINY_VIT)
    torch.save(model.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    wrong = json.loads(json.dumps(TINY_VIT))
    wrong["vision_cfg"]["patch_size"] = 16
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": wrong}))
    proc = subprocess.run([str(VITAMIN), "info", "-m", str(tmp_path / "open_clip_pytorch_model.bin")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "patch_size" in proc.stderr and "visual.conv1.weight" in proc.stderr, proc.stderr


@pytest.mark.parametrize("name,tokenizer", [("ViT-H-14-CLIPA", "bert-base-uncased"),
                                            ("ViT-L-14-worldwide", "google/mt5-base")])
def test_configs_needing_another_tokenizer_are_refused(name, tokenizer):
    proc = subprocess.run([str(VITAMIN), "info", "--model-name", name], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and tokenizer in proc.stderr, proc.stderr


def test_every_vit_config_matches_open_clip():
    """Every ViT row of `vitamin info` against open_clip's own config of that
    name (built on the meta device, so even ViT-e-14 costs nothing): image and
    text parameter counts, and every registered name is one open_clip has."""
    import open_clip

    out = subprocess.run([str(VITAMIN), "info"], capture_output=True, text=True, timeout=60).stdout
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("ViT-")}
    assert len(rows) >= 30
    for name, row in rows.items():
        m = open_clip.create_model(name, device="meta")
        vis = sum(p.numel() for p in m.visual.parameters())
        txt = sum(p.numel() for n, p in m.named_parameters() if not n.startswith("visual.") and n != "logit_scale")
        assert (int(row[-4]), int(row[-3])) == (vis, txt), name
        cfg = open_clip.get_model_config(name)
        assert int(row[2]) == cfg["vision_cfg"]["image_size"] and int(row[3]) == cfg["embed_dim"], name
        assert row[1] == f"ViT/{cfg['vision_cfg']['patch_size']}", name


def test_convert_writes_what_open_clip_loads(tmp_path):
    """`vitamin convert` of a ViT writes open_clip's CLIP layout (text tower
    at the top level) and its CLIP config: open_clip loads the tensors
    strictly, and vitamin.c reads the pair back to the same embeddings."""
    from safetensors.torch import load_file

    model = build("ViT-S-32-alt")
    src = tmp_path / "src"
    src.mkdir()
    torch.save(model.state_dict(), src / "open_clip_pytorch_model.bin")
    out = tmp_path / "out" / "open_clip_model.safetensors"
    out.parent.mkdir()
    proc = subprocess.run([str(VITAMIN), "convert", "-m", str(src / "open_clip_pytorch_model.bin"), "--model-name",
                           "ViT-S-32-alt", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    sd = load_file(str(out))
    assert "token_embedding.weight" in sd and not any(k.startswith("text.") for k in sd)
    fresh = build("ViT-S-32-alt", seed=5)
    fresh.load_state_dict(sd, strict=True)
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    cfg = json.loads((out.parent / "open_clip_config.json").read_text())["model_cfg"]
    assert cfg["vision_cfg"]["patch_size"] == 32 and cfg["embed_dim"] == 256
    run_case(out.parent, model, n_images=1, fmt="safetensors")


@pytest.mark.parametrize("normed", [False, True], ids=["raw", "patch-norm"])
def test_patch_features_are_open_clips_forward_intermediates(tmp_path, normed):
    """--patch-features of a ViT: the last resblock's patch tokens (no class
    token), [n, grid², width], as open_clip's
    visual.forward_intermediates(indices=1, output_fmt='NLC') gives them;
    --patch-norm: with normalize_intermediates=True (ln_post per token)."""
    from PIL import Image
    from open_clip.transform import image_transform

    model = build(TINY_VIT)
    torch.save(model.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_VIT}))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    proc = subprocess.run([str(VITAMIN), "embed", "-m", str(tmp_path), "--image", str(tmp_path / "a.png"), "-o",
                           str(tmp_path / "e.npy"), "--patch-features", str(tmp_path / "p.npy"),
                           *(["--patch-norm"] if normed else [])], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "p.npy").reshape(1, 16, 64)
    pixels = image_transform(32, is_train=False)(Image.open(tmp_path / "a.png")).unsqueeze(0)
    with torch.no_grad():
        out = model.visual.forward_intermediates(pixels, indices=1, normalize_intermediates=normed,
                                                 intermediates_only=True, output_fmt="NLC")
    ref = out["image_intermediates"][0].numpy()
    assert ref.shape == (1, 16, 64)
    assert np.abs(got - ref).max() / max(1.0, np.abs(ref).max()) <= TOL
    if normed:  # ln_post really was applied: per-token mean ~ bias mean, not the raw tokens'
        with torch.no_grad():
            raw = model.visual.forward_intermediates(pixels, indices=1, intermediates_only=True,
                                                     output_fmt="NLC")["image_intermediates"][0].numpy()
        assert np.abs(got - raw).max() > 10 * TOL


def test_patch_norm_without_patch_features_is_a_usage_error(tmp_path):
    proc = subprocess.run([str(VITAMIN), "embed", "-m", "ViT-B-32", "--text", "a", "-o", str(tmp_path / "e.npy"),
                           "--patch-norm"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--patch-features" in proc.stderr, proc.stderr


@pytest.mark.parametrize("size", [288, 160], ids=["up-7to9", "down-7to5"])
def test_image_size_resamples_the_positional_embedding_as_open_clip(tmp_path, size):
    """--image-size N is open_clip's force_image_size: create_model(...,
    pretrained=PATH, force_image_size=N) resizes the positional grid while
    loading (resize_pos_embed: bicubic, antialiased); the embeddings of an
    image at N px (open_clip's own transform at N) agree to 1e-4."""
    import open_clip
    from PIL import Image

    model = build("ViT-S-32")
    ckpt = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), ckpt)
    ref, _, preprocess = open_clip.create_model_and_transforms("ViT-S-32", pretrained=str(ckpt),
                                                               force_image_size=size)
    ref.eval()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (300, 340, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    with torch.no_grad():
        want = ref.encode_image(preprocess(Image.open(tmp_path / "a.png")).unsqueeze(0)).numpy()
    proc = subprocess.run([str(VITAMIN), "embed", "-m", str(ckpt), "--model-name", "ViT-S-32", "--image-size",
                           str(size), "--image", str(tmp_path / "a.png"), "-o", str(tmp_path / "e.npy")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "e.npy")
    assert np.abs(got - normalize(want)).max() <= TOL


def test_image_size_refusals(tmp_path):
    """A size that is no multiple of the patch, and a ViTamin model (checked
    before the weights are bound, so the ViT checkpoint serves for both)."""
    ckpt = tmp_path / "m.bin"
    torch.save(build("ViT-S-32").state_dict(), ckpt)
    for args, needle in [(["--model-name", "ViT-S-32", "--image-size", "250"], "multiple of"),
                         (["--model-name", "ViTamin-S", "--image-size", "256"], "separate models")]:
        proc = subprocess.run([str(VITAMIN), "info", "-m", str(ckpt), *args], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode != 0 and needle in proc.stderr, proc.stderr
