"""The encoder interface downstream models use, from Python and the CLI,
against the reference on random weights: `visual.forward_intermediates` vs
timm's (ViTamin's trunk) and open_clip's (ViT) for every returned index, the
conv maps vs timm's stem and MBConv stages, dense embeddings vs the head run
per token, and the sliding window vs a Python crop-run-average reference.
Tolerance: 1e-4 relative to each tensor's largest magnitude (activations of
the deeper blocks grow past 1; the parity suite's bound, measured ~1e-6)."""
import numpy as np
import open_clip
import pytest
import torch

import refmodel

vitamin = pytest.importorskip("vitamin")


def close(got, want, what=""):
    got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    scale = max(float(np.abs(want).max()), 1e-6)
    err = float(np.abs(got - want).max()) / scale
    assert err <= 1e-4, f"{what}: max error {err:.2e} of {scale:.3g}"


@pytest.fixture(scope="module", params=["ViTamin-S", "ViT-S-32"])
def case(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    model = refmodel.build_model(request.param)
    ckpt = str(d / "model.bin")
    refmodel.save_checkpoint(model, ckpt)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    pixels = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0)).numpy()
    c = dict(model=model, ckpt=ckpt, pixels=pixels, name=request.param)
    c["vitamin"] = vitamin.create_model(request.param, pretrained=c["ckpt"])
    return c


def reference_intermediates(c, indices, norm, fmt):
    visual, x = c["model"].visual, torch.from_numpy(c["pixels"])
    with torch.no_grad():
        if c["name"].startswith("ViTamin"):
            final, inter = visual.trunk.forward_intermediates(x, indices=indices, norm=norm, output_fmt=fmt)
            return final, inter
        out = visual.forward_intermediates(x, indices=indices, normalize_intermediates=norm, output_fmt=fmt)
        last = visual.forward_intermediates(x, indices=[-1], normalize_intermediates=True, output_fmt="NLC",
                                            output_extra_tokens=True)
        final = torch.cat([last["image_intermediates_prefix"][0], last["image_intermediates"][0]], dim=1)
        return final, out["image_intermediates"]


@pytest.mark.parametrize("indices", [None, 2, [0, -2], [-1]])
@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.parametrize("fmt", ["NCHW", "NLC"])
def test_forward_intermediates_match_reference(case, indices, norm, fmt):
    final, inter = case["vitamin"].visual.forward_intermediates(case["pixels"], indices=indices, norm=norm,
                                                                output_fmt=fmt)
    want_final, want_inter = reference_intermediates(case, indices, norm, fmt)
    close(final, want_final, "final")
    assert len(inter) == len(want_inter)
    for i, (g, w) in enumerate(zip(inter, want_inter)):
        close(g, w, f"intermediate {i}")
    only = case["vitamin"].visual.forward_intermediates(torch.from_numpy(case["pixels"]), indices=indices, norm=norm,
                                                        output_fmt=fmt, intermediates_only=True)
    assert isinstance(only[0], torch.Tensor) and len(only) == len(want_inter)
    for g, w in zip(only, want_inter):
        close(g, w)


def test_prefix_tokens_and_stages(case):
    model = case["vitamin"]
    x = torch.from_numpy(case["pixels"])
    if case["name"].startswith("ViT-"):
        got = model.visual.forward_intermediates(case["pixels"], indices=[-2], return_prefix_tokens=True,
                                                 intermediates_only=True, output_fmt="NLC")
        with torch.no_grad():
            want = model_ref = case["model"].visual.forward_intermediates(
                x, indices=[-2], output_fmt="NLC", intermediates_only=True, output_extra_tokens=True)
        close(got[0][0], model_ref["image_intermediates"][0])
        close(got[0][1], want["image_intermediates_prefix"][0])
        with pytest.raises(vitamin.InputError, match="no conv stem"):
            model.visual.forward_intermediates(case["pixels"], stages=True)
        return
    maps = model.visual.forward_intermediates(case["pixels"], indices=[-1], stages=True, intermediates_only=True)
    backbone = case["model"].visual.trunk.patch_embed.backbone
    with torch.no_grad():
        stem = backbone.stem(x)
        s1 = backbone.stages[0](stem)
        s2 = backbone.stages[1](s1)
    s = x.shape[-1]
    for got, want, stride in zip(maps[:3], (stem, s1, s2), (2, 4, 8)):
        assert got.shape[-1] == s // stride
        close(got, want, f"stride {stride}")
    assert maps[3].shape[-1] == s // 16


def reference_dense(c, pixels):
    visual = c["model"].visual
    with torch.no_grad():
        x = torch.from_numpy(pixels)
        if c["name"].startswith("ViTamin"):
            tokens = visual.trunk.forward_features(x)
            emb = visual.head(visual.trunk.fc_norm(tokens))
        else:
            out = visual.forward_intermediates(x, indices=[-1], normalize_intermediates=True, output_fmt="NLC",
                                               intermediates_only=True)
            emb = out["image_intermediates"][0] @ visual.proj
    return torch.nn.functional.normalize(emb, dim=-1)


def test_dense_embeddings(case):
    close(case["vitamin"].dense_embeddings(case["pixels"]), reference_dense(case, case["pixels"]), "dense")
    raw = case["vitamin"].dense_embeddings(case["pixels"], normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=-1), 1.0, atol=1e-3)


def test_sliding_window_matches_crop_run_average(case):
    model = case["vitamin"]
    s, p = model.visual.image_size[0], model._info["patch_stride"]
    h, w, stride = s + 3 * p, s + 5 * p, 2 * p
    gen = torch.Generator().manual_seed(3)
    image = torch.randn(3, h, w, generator=gen).numpy()
    acc = np.zeros((h // p, w // p, model.embed_dim), np.float64)
    hits = np.zeros((h // p, w // p, 1))
    for r in range((h - s + stride - 1) // stride + 1):
        for q in range((w - s + stride - 1) // stride + 1):
            y0, x0 = min(r * stride, h - s), min(q * stride, w - s)
            crop = np.ascontiguousarray(image[None, :, y0:y0 + s, x0:x0 + s])
            visual = case["model"].visual
            with torch.no_grad():
                if case["name"].startswith("ViTamin"):
                    emb = visual.head(visual.trunk.fc_norm(visual.trunk.forward_features(torch.from_numpy(crop))))
                else:
                    out = visual.forward_intermediates(torch.from_numpy(crop), indices=[-1], output_fmt="NLC",
                                                       normalize_intermediates=True, intermediates_only=True)
                    emb = out["image_intermediates"][0] @ visual.proj
            g = s // p
            acc[y0 // p:y0 // p + g, x0 // p:x0 // p + g] += emb[0].numpy().reshape(g, g, -1)
            hits[y0 // p:y0 // p + g, x0 // p:x0 // p + g] += 1
    want = acc / hits
    want /= np.linalg.norm(want, axis=-1, keepdims=True)
    close(model.dense_embeddings_sliding(image, stride=stride), want.astype(np.float32), "sliding")
    with pytest.raises(vitamin.InputError, match="multiple"):
        model.dense_embeddings_sliding(image[:, : s + 1], stride=stride)
    with pytest.raises(vitamin.InputError, match="stride"):
        model.dense_embeddings_sliding(image, stride=p + 1)


def test_bad_indices(case):
    v = case["vitamin"].visual
    depth = case["vitamin"]._info["depth"]
    with pytest.raises(ValueError, match="block index"):
        v.forward_intermediates(case["pixels"], indices=[depth])
    with pytest.raises(ValueError, match="last 1"):
        v.forward_intermediates(case["pixels"], indices=0)
    with pytest.raises(ValueError, match="output_fmt"):
        v.forward_intermediates(case["pixels"], output_fmt="NHWC")


def test_cli_layer_and_dense(case, vitamin_cli, tmp_path):
    """`vitamin embed --patch-features F --layer N` and `--dense-embeddings F`
    are the same numbers as the Python API, from an image file."""
    import subprocess
    from PIL import Image

    img = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 260, 3), dtype=np.uint8)).save(img)
    proc = subprocess.run([str(vitamin_cli), "embed", "-m", case["ckpt"], "--model-name", case["name"], "-i", str(img),
                           "-o", str(tmp_path / "e.npy"), "--patch-features", str(tmp_path / "p.npy"), "--layer", "-2",
                           "--dense-embeddings", str(tmp_path / "d.npy")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    model = case["vitamin"]
    pixels = vitamin.Preprocess(model.visual.image_size[0]).batch([img])
    want_p = model.visual.forward_intermediates(pixels, indices=[-2], output_fmt="NLC", intermediates_only=True)[0]
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), want_p.reshape(1, -1))
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy"), model.dense_embeddings(pixels).reshape(1, -1))
    bad = subprocess.run([str(vitamin_cli), "embed", "-m", case["ckpt"], "-i", str(img), "-o", str(tmp_path / "f.npy"),
                          "--layer", "1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "--patch-features" in bad.stderr
