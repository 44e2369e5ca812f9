"""The `vitamin` CLI end to end, against open_clip's full pipeline
(PIL + transforms + tokenizer + model), and every error path a user can hit.

Tolerances: embeddings are unit-norm rows, max abs error <= 1e-4 (fp32);
zero-shot probabilities max abs error <= 1e-4; a bf16 conversion keeps
cosine >= 0.999 to the fp32 embedding (bf16 has an 8-bit mantissa)."""
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch
from vtpaths import BUILD, need  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "reference"))
from refmodel import build_model, save_checkpoint  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
VITAMIN = str(BUILD / "vitamin")
SKIMAGE_PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "camera.png", "rocket.jpg", "retina.jpg"]


def run(*args, check=True, **kw):
    proc = subprocess.run([VITAMIN, *map(str, args)], capture_output=True, text=True, timeout=600, **kw)
    if check:
        assert proc.returncode == 0, f"{args}: {proc.stderr}"
    return proc


def photos():
    import skimage

    d = pathlib.Path(skimage.__file__).parent / "data"
    return [str(d / p) for p in SKIMAGE_PHOTOS]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    model = build_model("ViTamin-S", seed=3)
    save_checkpoint(model, str(d / "pytorch_model.bin"))
    return model, d / "pytorch_model.bin"


def open_clip_embed(model, images, texts):
    import open_clip
    from PIL import Image

    preprocess = open_clip.image_transform(224, is_train=False)
    tok = open_clip.get_tokenizer("ViTamin-S")
    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(Image.open(p)) for p in images]), normalize=True)
        txt = model.encode_text(tok(texts), normalize=True)
    return img.numpy(), txt.numpy()


def test_help_everywhere():
    out = run("--help").stdout
    for cmd in ["embed", "classify", "similarity", "tokenize", "info", "convert"]:
        assert cmd in out
        assert "usage: vitamin " + cmd in run(cmd, "--help").stdout


def test_unknown_command_and_option():
    p = run("frobnicate", check=False)
    assert p.returncode == 2 and "unknown command" in p.stderr
    p = run("embed", "--bogus", check=False)
    assert p.returncode == 2 and "unknown option" in p.stderr


def test_embed_matches_open_clip(small_model, tmp_path):
    model, ckpt = small_model
    texts = ["a photo of a cat", "an astronaut", "a cup of coffee", "Ünïcödé & emoji 🙂"]
    out = tmp_path / "e.npy"
    args = ["embed", "-m", ckpt, "-o", out]
    for p in photos():
        args += ["--image", p]
    for t in texts:
        args += ["--text", t]
    run(*args)
    got = np.load(out)
    ref_img, ref_txt = open_clip_embed(model, photos(), texts)
    assert got.shape == (len(photos()) + len(texts), 384)
    assert np.abs(got[: len(photos())] - ref_img).max() <= 1e-4
    assert np.abs(got[len(photos()):] - ref_txt).max() <= 1e-4


def test_classify_matches_open_clip(small_model, tmp_path):
    import open_clip
    from open_clip.zero_shot_classifier import build_zero_shot_classifier

    model, ckpt = small_model
    labels = ["cat", "astronaut", "coffee", "rocket"]
    templates = ["a photo of a {}.", "a drawing of the {}."]
    (tmp_path / "t.txt").write_text("\n".join(templates) + "\n")
    p = run("classify", "-m", ckpt, "--labels", ",".join(labels), "--templates", tmp_path / "t.txt", "--json",
            "--top", "4", *photos()[:3])
    import json

    rows = [json.loads(line) for line in p.stdout.splitlines()]
    tok = open_clip.get_tokenizer("ViTamin-S")
    with torch.no_grad():
        w = build_zero_shot_classifier(model, tok, labels, templates, device="cpu")
    from PIL import Image

    pre = open_clip.image_transform(224, is_train=False)
    with torch.no_grad():
        img = model.encode_image(torch.stack([pre(Image.open(x)) for x in photos()[:3]]), normalize=True)
        probs = (model.logit_scale.exp() * img @ w).softmax(dim=-1).numpy()
    for i, row in enumerate(rows):
        for entry in row["top"]:
            assert abs(entry["probability"] - probs[i, labels.index(entry["label"])]) <= 1e-4
        assert row["top"][0]["label"] == labels[int(probs[i].argmax())]


def test_tokenize_matches_open_clip():
    import open_clip

    texts = ["a photo of a cat", "Hello, World!!", "x" * 500]
    p = run("tokenize", *texts)
    ref = open_clip.get_tokenizer("ViTamin-S")(texts).numpy()
    got = np.array([[int(v) for v in line.split()] for line in p.stdout.splitlines()])
    assert (got == ref).all()


def test_similarity_prints_matrix(small_model):
    _, ckpt = small_model
    p = run("similarity", "-m", ckpt, "--image", photos()[0], "--image", photos()[1], "--text", "a", "--text", "b")
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 3 and all(len(line.split("\t")) == 3 for line in lines)


def test_info_table_counts_equal_open_clip():
    import open_clip

    table = {line.split()[0]: line.split() for line in run("info").stdout.splitlines() if line.startswith("ViTamin")}
    names = ["ViTamin-S", "ViTamin-S-LTT", "ViTamin-B", "ViTamin-B-LTT", "ViTamin-L-256", "ViTamin-XL-384"]
    if os.environ.get("VITAMIN_FULL_SWEEP") == "1":
        names = [n for n in table if n != "ViTamin-Tiny"]
    for name in names:
        m = open_clip.create_model(name, device="meta")
        vis = sum(p.numel() for p in m.visual.parameters())
        txt = sum(p.numel() for n, p in m.named_parameters() if n.startswith("text."))
        assert int(table[name][-4]) == vis, name
        assert int(table[name][-3]) == txt, name


def test_convert_roundtrip(small_model, tmp_path):
    import open_clip

    model, ckpt = small_model
    for dtype in ["f32", "bf16"]:
        out = tmp_path / dtype / "open_clip_model.safetensors"
        out.parent.mkdir()
        run("convert", "-m", ckpt, "-o", out, "--dtype", dtype)
        assert (out.parent / "open_clip_config.json").exists()
        run("embed", "-m", out.parent, "--image", photos()[0], "-o", tmp_path / f"{dtype}.npy")
    run("embed", "-m", ckpt, "--image", photos()[0], "-o", tmp_path / "orig.npy")
    orig, f32, bf16 = (np.load(tmp_path / f"{n}.npy") for n in ["orig", "f32", "bf16"])
    assert np.array_equal(orig, f32)
    assert float((orig * bf16).sum()) >= 0.999
    # open_clip itself loads what we wrote.
    m2 = open_clip.create_model("ViTamin-S", pretrained=str(tmp_path / "f32" / "open_clip_model.safetensors"))
    for (k, a), (_, b) in zip(model.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k


# ---------------------------------------------------------------- bad input


def expect_error(args, *needles):
    p = run(*args, check=False)
    assert p.returncode in (1, 2), f"exit {p.returncode} (signal?) for {args}: {p.stderr}"
    for n in needles:
        assert n in p.stderr, f"{n!r} not in {p.stderr!r}"
    return p


def test_bad_models(small_model, tmp_path):
    _, ckpt = small_model
    data = ckpt.read_bytes()
    expect_error(["info", "-m", tmp_path / "missing.bin"], "no such file")
    expect_error(["info", "--model-name", "ViTamin-Huge"], "unknown model", "ViTamin-S")
    expect_error(["info", "-m", ckpt, "--model-name", "ViTamin-B"], "shape")
    for cut in [10, 1000, len(data) // 2, len(data) - 100]:
        (tmp_path / "cut.bin").write_bytes(data[:cut])
        expect_error(["info", "-m", tmp_path / "cut.bin"])
    (tmp_path / "text.bin").write_text("hello world, not a checkpoint\n")
    expect_error(["info", "-m", tmp_path / "text.bin"])


def test_bad_tensors(tmp_path):
    from safetensors.torch import save_file

    model = build_model("ViTamin-S", seed=5)
    sd = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    bad = dict(sd)
    bad["visual.trunk.blocks.3.attn.qkv.weight"] = bad["visual.trunk.blocks.3.attn.qkv.weight"].clone()
    bad["visual.trunk.blocks.3.attn.qkv.weight"][5, 7] = float("nan")
    save_file(bad, str(tmp_path / "nan.safetensors"))
    expect_error(["info", "-m", tmp_path / "nan.safetensors"], "blocks.3.attn.qkv.weight", "non-finite")
    bad = dict(sd)
    del bad["text.ln_final.bias"]
    save_file(bad, str(tmp_path / "missing.safetensors"))
    expect_error(["info", "-m", tmp_path / "missing.safetensors", "--model-name", "ViTamin-S"], "text.ln_final.bias", "missing")
    bad = dict(sd)
    bad["visual.trunk.extra"] = torch.zeros(3)
    save_file(bad, str(tmp_path / "extra.safetensors"))
    expect_error(["info", "-m", tmp_path / "extra.safetensors"], "visual.trunk.extra", "unexpected")
    bad = dict(sd)
    bad["visual.trunk.fc_norm.weight"] = torch.zeros(383)
    save_file(bad, str(tmp_path / "shape.safetensors"))
    expect_error(["info", "-m", tmp_path / "shape.safetensors", "--model-name", "ViTamin-S"], "fc_norm.weight", "[383]", "[384]")
    bad = dict(sd)
    bad["visual.trunk.fc_norm.weight"] = torch.zeros(384, dtype=torch.int64)
    save_file(bad, str(tmp_path / "dtype.safetensors"))
    expect_error(["info", "-m", tmp_path / "dtype.safetensors"], "fc_norm.weight", "dtype")


def test_bad_inputs(small_model, tmp_path):
    _, ckpt = small_model
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(200))
    expect_error(["embed", "-m", ckpt, "--image", tmp_path / "corrupt.jpg", "-o", tmp_path / "o.npy"], "corrupt.jpg")
    (tmp_path / "notimage.png").write_text("plain text")
    expect_error(["embed", "-m", ckpt, "--image", tmp_path / "notimage.png", "-o", tmp_path / "o.npy"], "notimage.png")
    expect_error(["embed", "-m", ckpt, "--image", tmp_path / "nope.jpg", "-o", tmp_path / "o.npy"], "nope.jpg")
    # A PNG header claiming 100000 x 100000 pixels: refused before allocating.
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    (tmp_path / "huge.png").write_bytes(png)
    expect_error(["embed", "-m", ckpt, "--image", tmp_path / "huge.png", "-o", tmp_path / "o.npy"], "huge.png")
    bad_utf8 = subprocess.run([VITAMIN, "tokenize", b"caf\xc3("], capture_output=True, timeout=60)
    assert bad_utf8.returncode == 1 and b"UTF-8" in bad_utf8.stderr
    expect_error(["embed", "-m", ckpt, "--text", "x"], "-o")
    expect_error(["embed", "-m", ckpt, "-o", tmp_path / "o.npy"], "nothing to embed")
    expect_error(["embed", "--threads", "-3", "-m", ckpt, "--text", "x", "-o", tmp_path / "o.npy"], "--threads")


def test_full_disk(small_model, tmp_path):
    """A 16 KiB tmpfs fills up mid-write: clear error, no partial file left."""
    _, ckpt = small_model
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mnt)], capture_output=True)
    need(mounted.returncode == 0, "cannot mount a small tmpfs here (needs root)")
    try:
        args = ["embed", "-m", ckpt, "-o", mnt / "o.npy"] + sum((["--text", f"t{i}"] for i in range(40)), [])
        p = expect_error(args)
        assert "space" in p.stderr.lower() or "full" in p.stderr.lower(), p.stderr
        assert os.listdir(mnt) == [], os.listdir(mnt)
    finally:
        subprocess.run(["umount", str(mnt)])


def test_library_concurrent_encoding(small_model):
    """Several threads encoding with one loaded model give identical results."""
    _, ckpt = small_model
    env = dict(os.environ, VITAMIN_BPE_VOCAB=str(ROOT / "share" / "bpe_simple_vocab_16e6.txt.gz"))
    proc = subprocess.run([str(BUILD / "testtools" / "api_threads"), str(ckpt), photos()[0], "a photo"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("amx", ["1", "0"])
def test_bf16_embeddings_close_to_fp32(small_model, tmp_path, amx):
    """--bf16 (bfloat16 weights and inputs, fp32 accumulation): every embedding
    keeps cosine >= 0.999 with the fp32 one, on the AMX and on the VDPBF16PS path."""
    import subprocess as sp

    flags = open("/proc/cpuinfo").read()
    if " avx512_bf16 " not in flags:
        pytest.skip("CPU without AVX512-BF16")
    if amx == "1" and " amx_bf16 " not in flags:
        pytest.skip("CPU without AMX-BF16")
    _, ckpt = small_model
    args = ["embed", "-m", ckpt, "--text", "a photo of a cat", "--text", "an astronaut"]
    for p in photos():
        args += ["--image", p]
    run(*args, "-o", tmp_path / "fp32.npy")
    env = dict(os.environ, VITAMIN_AMX=amx)
    proc = sp.run([VITAMIN, *map(str, args), "--bf16", "-o", str(tmp_path / "bf16.npy")], capture_output=True,
                  text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    cos = (np.load(tmp_path / "fp32.npy") * np.load(tmp_path / "bf16.npy")).sum(axis=1)
    assert cos.min() >= 0.999, cos


def test_patch_features_match_timm_forward_features(small_model, tmp_path):
    """--patch-features: the last block's tokens, as timm's forward_features."""
    import open_clip
    from PIL import Image

    model, ckpt = small_model
    run("embed", "-m", ckpt, "--image", photos()[0], "--image", photos()[2], "-o", tmp_path / "e.npy",
        "--patch-features", tmp_path / "p.npy")
    got = np.load(tmp_path / "p.npy").reshape(2, 196, 384)
    pre = open_clip.image_transform(224, is_train=False)
    with torch.no_grad():
        ref = model.visual.trunk.forward_features(torch.stack([pre(Image.open(p)) for p in [photos()[0], photos()[2]]]))
    scale = max(1.0, float(ref.abs().max()))
    assert np.abs(got - ref.numpy()).max() / scale <= 1e-4
