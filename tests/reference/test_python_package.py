"""The Python package (`import vitamin`, installed into the test venv by
tests/run.sh) against open_clip on the same random-weight models: the API
open_clip users call, numpy and torch inputs, threads, bad input.

Tolerances: embeddings <= 1e-4 max abs on unit-norm features (the parity
suite's bound for the same engine; measured ~1e-7), tokens and
preprocessing identical (the C tokenizer and Pillow-exact transform)."""
import io
import threading

import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

import refmodel

vitamin = pytest.importorskip("vitamin")

MODELS = ["ViTamin-S", "ViTamin-B"]


@pytest.fixture(scope="module", params=MODELS)
def case(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(request.param)
    c = refmodel.make_case(str(d), request.param, n_images=2, n_texts=5)
    c["name"] = request.param
    return c


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """PNG/JPEG files and PIL images of several modes and sizes."""
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    out = []
    for i, (mode, size) in enumerate([("RGB", (300, 200)), ("L", (64, 97)), ("RGBA", (250, 250)), ("P", (90, 300))]):
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        img = Image.fromarray(arr).convert(mode) if mode != "P" else Image.fromarray(arr).quantize(64)
        path = d / f"img{i}.{'jpg' if mode in ('RGB', 'L') else 'png'}"
        img.save(path)
        out.append(path)
    return out


def open_clip_preprocess(name, image_size):
    _, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=None)
    return preprocess


def test_create_model_and_transforms_encode(case):
    model, preprocess_train, preprocess = vitamin.create_model_and_transforms(case["name"], pretrained=case["ckpt"])
    assert model.name == case["name"]
    s = case["pixels"].shape[-1]
    assert model.visual.image_size == (s, s) == tuple(case["model"].visual.image_size)
    assert model.visual.output_dim == case["image_features"].shape[1]
    ref_scale = float(case["model"].logit_scale.detach())
    assert abs(model.logit_scale - ref_scale) < 1e-6 and abs(model.logit_scale.exp() - np.exp(ref_scale)) < 1e-4
    got = model.encode_image(case["pixels"])
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_allclose(got, case["image_features"], atol=1e-4, rtol=0)
    normed = model.encode_image(torch.from_numpy(case["pixels"]), normalize=True)
    assert isinstance(normed, torch.Tensor)
    ref = torch.nn.functional.normalize(torch.from_numpy(case["image_features"]), dim=-1)
    assert (normed - ref).abs().max() <= 1e-4
    tok = vitamin.get_tokenizer(case["name"])
    ids = tok(case["texts"])
    assert ids.dtype == np.int64 and ids.shape == (5, 77)
    np.testing.assert_array_equal(ids, open_clip.get_tokenizer(case["name"])(case["texts"]).numpy())
    np.testing.assert_allclose(model.encode_text(ids), case["text_features"], atol=1e-4, rtol=0)
    t = model.encode_text(torch.from_numpy(ids), normalize=True)
    assert isinstance(t, torch.Tensor)
    ref_t = torch.nn.functional.normalize(torch.from_numpy(case["text_features"]), dim=-1)
    assert (t - ref_t).abs().max() <= 1e-4
    # open_clip's forward
    img_f, txt_f, scale = model(case["pixels"], ids)
    assert abs(scale - np.exp(ref_scale)) < 1e-4 and np.allclose(np.linalg.norm(img_f, axis=1), 1, atol=1e-5)
    # shorter token rows are zero-padded to the context, as the tokenizer pads
    short = ids[:, :20]
    with torch.no_grad():
        want = case["model"].encode_text(torch.from_numpy(np.pad(short, ((0, 0), (0, 57))))).numpy()
    np.testing.assert_allclose(model.encode_text(short), want, atol=1e-4, rtol=0)
    model.close()


def test_preprocess_and_embed_images_match_open_clip(case, images):
    model, _, preprocess = vitamin.create_model_and_transforms(case["name"], pretrained=case["ckpt"])
    ref_pre = open_clip_preprocess(case["name"], model.visual.image_size[0])
    pil = [Image.open(p) for p in images]
    want = torch.stack([ref_pre(im) for im in pil]).numpy()
    # paths, bytes, PIL images (RGB and the modes that go through PNG), uint8 arrays
    np.testing.assert_array_equal(preprocess.batch(images), want)
    np.testing.assert_array_equal(preprocess.batch([p.read_bytes() for p in images]), want)
    np.testing.assert_array_equal(preprocess.batch(pil), want)
    np.testing.assert_array_equal(preprocess(pil[0]), want[0])
    rgb = np.asarray(pil[0].convert("RGB"))
    np.testing.assert_array_equal(preprocess(rgb), want[0])
    with torch.no_grad():
        ref_feat = case["model"].encode_image(torch.from_numpy(want), normalize=True).numpy()
    np.testing.assert_allclose(model.embed_images(images, normalize=True), ref_feat, atol=1e-4, rtol=0)
    np.testing.assert_allclose(model.embed_images(pil, normalize=True), ref_feat, atol=1e-4, rtol=0)
    model.close()


def test_preprocess_train_crops_like_the_trainer(case, images):
    """The train transform is RandomResizedCrop(scale 0.9-1) from the seeded
    counter RNG: deterministic per (seed, sample), different across samples.
    (The box and crop are the trainer's, which tests/test_data_loader.py
    checks against torchvision.)"""
    _, train_a, _ = vitamin.create_model_and_transforms(case["name"], pretrained=case["ckpt"], seed=7)
    _, train_b, _ = vitamin.create_model_and_transforms(case["name"], pretrained=case["ckpt"], seed=7)
    _, train_c, _ = vitamin.create_model_and_transforms(case["name"], pretrained=case["ckpt"], seed=8)
    a = train_a.batch(images)
    np.testing.assert_array_equal(a, train_b.batch(images))
    assert not np.array_equal(a, train_c.batch(images))
    # the next sample gets a new crop (image 2 is square: a 300x200 one never
    # fits the ratio range at scale >= 0.9, so torchvision's fallback centre crop is fixed)
    assert not np.array_equal(train_a(images[2]), a[2])
    assert a.shape == (len(images), 3) + tuple(train_a.image_size for _ in range(2))


def test_threads_give_identical_results(case):
    model = vitamin.create_model(case["name"], pretrained=case["ckpt"], threads=1)
    pixels = np.repeat(case["pixels"], 2, axis=0)
    ids = vitamin.get_tokenizer()(case["texts"])
    want_i, want_t = model.encode_image(pixels), model.encode_text(ids)
    results, errors = [], []

    def work():
        try:
            for _ in range(2):
                results.append((model.encode_image(pixels), model.encode_text(ids)))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 8
    for i, t in results:
        np.testing.assert_array_equal(i, want_i)
        np.testing.assert_array_equal(t, want_t)


def test_bad_input_raises(case, tmp_path):
    model = vitamin.create_model(case["name"], pretrained=case["ckpt"])
    s = model.visual.image_size[0]
    with pytest.raises(TypeError, match="float32"):
        model.encode_image(case["pixels"].astype(np.float64))
    with pytest.raises(ValueError, match=r"\[B, 3, %d, %d\]" % (s, s)):
        model.encode_image(np.zeros((1, 3, s + 1, s), np.float32))
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        model.encode_image([[1.0]])
    # a non-contiguous view is copied, as open_clip accepts it
    wide = np.zeros((2, 3, s, 2 * s), np.float32)
    wide[..., ::2] = case["pixels"]
    np.testing.assert_allclose(model.encode_image(wide[..., ::2]), model.encode_image(case["pixels"]), atol=0)
    # ...while the C layer itself refuses a buffer it cannot read in place
    out = np.empty((2, model.embed_dim), np.float32)
    with pytest.raises(TypeError, match="C-contiguous"):
        model._core.encode_pixels(wide[..., ::2], 2, False, out, 0)
    with pytest.raises(ValueError, match="bytes"):
        model._core.encode_pixels(case["pixels"][:1], 2, False, out, 0)
    with pytest.raises(ValueError, match="vocabulary"):
        model.encode_text(np.full((1, 77), 2**40, np.int64))
    with pytest.raises(vitamin.InputError, match="outside the vocabulary"):
        model.encode_text(np.full((1, 77), 60000, np.int64))
    with pytest.raises(ValueError, match=r"1 <= L <= 77"):
        model.encode_text(np.zeros((1, 78), np.int64))
    with pytest.raises(TypeError, match="dtype float32"):
        model.encode_text(np.zeros((1, 77), np.float32))
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("not an image")
    with pytest.raises(vitamin.InputError, match="image 0"):
        model.embed_images([not_image])
    with pytest.raises(vitamin.FileError):
        model.embed_images([tmp_path / "missing.png"])
    with pytest.raises(vitamin.InputError):
        model.embed_images([b"\x89PNG\r\n\x1a\n truncated"])
    with pytest.raises(TypeError, match="not an image"):
        model.embed_images([3.5])
    with pytest.raises(TypeError, match="uint8"):
        model.embed_images([np.zeros((4, 4, 3), np.float32)])
    assert model.to("cuda") is model and model.eval() is model  # computes on the CPU whatever the device
    with pytest.raises(NotImplementedError, match="vitamin.train"):
        model.train()
    model.close()
    assert model.closed
    for call in (lambda: model.encode_image(case["pixels"]), lambda: model.encode_text(np.zeros((1, 77), np.int64))):
        with pytest.raises(ValueError, match="closed"):
            call()
    model.close()  # twice is fine


def test_names_and_errors():
    names = vitamin.list_models()
    assert {"ViTamin-S", "ViTamin-L-384", "ViT-B-32", "ViT-L-14-336"} <= set(names)
    assert len(names) == len(set(names))
    with pytest.raises(vitamin.ModelError, match="ViTamin-Q"):
        vitamin.get_tokenizer("ViTamin-Q")
    with pytest.raises(vitamin.Error):
        vitamin.create_model("/nonexistent/dir/model.bin", offline=True)
    with pytest.raises(ValueError, match="precision"):
        vitamin.create_model("x", pretrained="/nonexistent", precision="fp16")
    assert vitamin.get_tokenizer("ViT-B-32").context_length == 77
    tok = vitamin.get_tokenizer(return_tensors="pt")
    assert tok("a cat").dtype == torch.int64 and tok("a cat").shape == (1, 77)
    with pytest.raises(TypeError, match="str"):
        vitamin.get_tokenizer()(["ok", 3])
    with pytest.raises(ValueError, match="NUL"):
        vitamin.get_tokenizer()(["a\0b"])


def test_help_is_enough_to_start():
    doc = vitamin.__doc__
    for needle in ("create_model_and_transforms", "get_tokenizer", "encode_image", "embed_images", "Error"):
        assert needle in doc
    for fn in (vitamin.create_model_and_transforms, vitamin.CLIP.encode_image, vitamin.CLIP.encode_text,
               vitamin.get_tokenizer, vitamin.eval_zeroshot, vitamin.train):
        assert fn.__doc__ and len(fn.__doc__) > 40, fn
