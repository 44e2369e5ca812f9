"""ViT CLIP checkpoints as people hold them besides open_clip's own files:
transformers' CLIPModel (`save_pretrained`: model.safetensors or
pytorch_model.bin + config.json, as openai/clip-vit-base-patch32 is laid
out) and OpenAI's TorchScript archives (what open_clip's `openai` tag loads).

Each is written in the test by the library that defines it, with every
parameter random (refmodel.randomize, so a dropped or swapped tensor shows),
and vitamin.c's unit-norm embeddings are compared with that library's own
forward: max abs error <= 1e-4 (fp32; the same bound as every parity test,
tests/reference/test_vit_parity.py). Bad input is checked for its message."""
import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from vtpaths import BUILD  # noqa: E402
from refmodel import randomize  # noqa: E402

TRACE = BUILD / "testtools" / "vt_trace"
VITAMIN = BUILD / "vitamin"
TOL = 1e-4
CAPTIONS = ["a photo of a cat", "a diagram", "x-ray of a hand with many balloons in the sky"]


def normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def tokens():
    import open_clip
    return open_clip.get_tokenizer("ViT-B-32")(CAPTIONS)


def vitamin_features(tmp_path, ckpt, pixels, ids, extra=()):
    pixels.numpy().astype(np.float32).tofile(tmp_path / "p.f32")
    ids.numpy().astype(np.int32).tofile(tmp_path / "ids.i32")
    cmd = [str(TRACE), str(ckpt), str(tmp_path), "--pixels", str(tmp_path / "p.f32"), str(len(pixels)),
           "--tokens", str(tmp_path / "ids.i32"), str(len(ids)), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return np.load(tmp_path / "image_features.npy"), np.load(tmp_path / "text_features.npy")


def assert_close(got, ref):
    err = np.abs(normalize(got) - normalize(ref)).max()
    assert err <= TOL, err


# ------------------------------------------------------------ transformers


def hf_model(act="quick_gelu", eos=None, layers=2, image_size=32, patch=8):
    from transformers import CLIPConfig, CLIPModel

    text = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=layers, num_attention_heads=2,
                max_position_embeddings=77, vocab_size=49408, hidden_act=act)
    if eos is not None:
        text.update(eos_token_id=eos, bos_token_id=49406, pad_token_id=0)
    vision = dict(hidden_size=96, intermediate_size=200, num_hidden_layers=layers, num_attention_heads=3,
                  image_size=image_size, patch_size=patch, hidden_act=act)
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=48)).eval()
    return randomize(model, 0)


def hf_reference(model, pixels, ids):
    with torch.no_grad():
        return (model.get_image_features(pixel_values=pixels).numpy(),
                model.get_text_features(input_ids=ids).numpy())


@pytest.mark.parametrize("act,eos,safe", [("quick_gelu", None, True), ("gelu", 49407, False)],
                         ids=["quickgelu-legacy-eos-safetensors", "gelu-eos49407-bin"])
def test_transformers_clipmodel_embeds_like_transformers(tmp_path, act, eos, safe):
    model = hf_model(act, eos)
    model.save_pretrained(tmp_path / "repo", safe_serialization=safe)
    ckpt = tmp_path / "repo" / ("model.safetensors" if safe else "pytorch_model.bin")
    assert ckpt.exists()
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    ids = tokens()
    img, txt = hf_reference(model, pixels, ids)
    got_img, got_txt = vitamin_features(tmp_path, ckpt, pixels, ids)
    assert_close(got_img, img)
    assert_close(got_txt, txt)


def test_transformers_checkpoint_converts_to_open_clip(tmp_path):
    """`vitamin convert` of a CLIPModel: the open_clip state dict it writes
    loads strictly into open_clip's CLIP built from the config it writes, and
    open_clip then embeds like transformers."""
    import open_clip
    from open_clip.model import CLIP
    from safetensors.torch import load_file

    model = hf_model()
    model.save_pretrained(tmp_path / "repo")
    out = tmp_path / "out" / "open_clip_model.safetensors"
    out.parent.mkdir()
    proc = subprocess.run([str(VITAMIN), "convert", "-m", str(tmp_path / "repo"), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads((out.parent / "open_clip_config.json").read_text())["model_cfg"]
    assert cfg["quick_gelu"] is True and cfg["vision_cfg"]["width"] == 96
    oc = CLIP(**cfg).eval()
    oc.load_state_dict(load_file(str(out)), strict=True)
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    ids = tokens()
    img, txt = hf_reference(model, pixels, ids)
    with torch.no_grad():
        assert_close(oc.encode_image(pixels).numpy(), img)
        assert_close(oc.encode_text(ids).numpy(), txt)
    del open_clip


def info(path):
    return subprocess.run([str(VITAMIN), "info", "-m", str(path)], capture_output=True, text=True, timeout=120)


def test_transformers_config_of_another_model_type_is_refused(tmp_path):
    model = hf_model()
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["model_type"] = "siglip"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    proc = info(tmp_path / "model.safetensors")
    assert proc.returncode != 0 and "siglip" in proc.stderr and "CLIPModel" in proc.stderr, proc.stderr


@pytest.mark.parametrize("field,value,expect", [
    (("vision_config", "num_hidden_layers"), 3, "says 3 transformer blocks, but the checkpoint holds 2"),
    (("text_config", "hidden_act"), "relu", "hidden_act"),
    (("vision_config", "hidden_act"), "gelu", "differ"),
    (("text_config", "eos_token_id"), 7, "eos_token_id"),
    (("text_config", "layer_norm_eps"), 1e-6, "layer_norm_eps"),
])
def test_transformers_config_that_open_clip_cannot_run_or_the_weights_contradict(tmp_path, field, value, expect):
    model = hf_model()
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg[field[0]][field[1]] = value
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    proc = info(tmp_path / "model.safetensors")
    assert proc.returncode != 0 and expect in proc.stderr, proc.stderr


def test_transformers_checkpoint_with_position_ids_buffers(tmp_path):
    """Checkpoints saved by older transformers (openai/clip-vit-base-patch32's
    pytorch_model.bin) also hold the position_ids buffers: skipped, as
    transformers skips them."""
    from safetensors.torch import load_file, save_file

    model = hf_model()
    model.save_pretrained(tmp_path)
    sd = load_file(str(tmp_path / "model.safetensors"))
    sd["vision_model.embeddings.position_ids"] = torch.arange(17).unsqueeze(0)
    sd["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
    save_file(sd, str(tmp_path / "model.safetensors"))
    pixels = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    ids = tokens()
    img, txt = hf_reference(model, pixels, ids)
    got_img, got_txt = vitamin_features(tmp_path, tmp_path / "model.safetensors", pixels, ids)
    assert_close(got_img, img)
    assert_close(got_txt, txt)


def test_transformers_checkpoint_missing_a_projection_of_q_k_v(tmp_path):
    from safetensors.torch import load_file, save_file

    model = hf_model()
    model.save_pretrained(tmp_path)
    sd = load_file(str(tmp_path / "model.safetensors"))
    del sd["vision_model.encoder.layers.1.self_attn.v_proj.weight"]
    save_file(sd, str(tmp_path / "model.safetensors"))
    proc = info(tmp_path / "model.safetensors")
    assert proc.returncode != 0 and "v_proj.weight" in proc.stderr and "missing" in proc.stderr, proc.stderr


# ------------------------------------------------------------ OpenAI TorchScript

# OpenAI's layout: open_clip's build_model_from_openai_state_dict infers the
# heads as width / 64, so the tiny towers use head width 64.
OPENAI_TINY = {"embed_dim": 64, "vision_cfg": {"image_size": 32, "layers": 2, "width": 128, "head_width": 64,
                                                "patch_size": 8},
               "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 128, "heads": 2, "layers": 2}}


def openai_archive(path):
    """open_clip's OpenAI-layout model (fp16 weights, QuickGELU, as
    build_model_from_openai_state_dict makes it), traced and saved with
    torch.jit.save: the kind of archive OpenAI released (ViT-B-32.pt)."""
    from open_clip.model import CLIP, build_model_from_openai_state_dict

    torch.manual_seed(0)
    src = randomize(CLIP(**OPENAI_TINY, quick_gelu=True).eval(), 0)
    fp32 = build_model_from_openai_state_dict(src.state_dict()).float().eval()
    # OpenAI's model holds the causal mask as a plain attribute, not a buffer,
    # so their archives' state_dict() (which open_clip loads strictly) has none.
    mask = fp32.attn_mask
    del fp32._buffers["attn_mask"]
    fp32.attn_mask = mask
    traced = torch.jit.trace(fp32, (torch.zeros(1, 3, 32, 32), torch.zeros(1, 77, dtype=torch.long)),
                             check_trace=False)
    traced.half().save(str(path))
    assert any(n.endswith("/constants.pkl") for n in __import__("zipfile").ZipFile(path).namelist())


def test_openai_torchscript_archive_embeds_like_open_clip(tmp_path):
    """No config beside it: the archive's shapes and QuickGELU (every OpenAI
    archive's activation) give the architecture; the reference is open_clip's
    load_openai_model of the same file, which reads the archive's state_dict."""
    import open_clip

    ckpt = tmp_path / "ViT-tiny.pt"
    openai_archive(ckpt)
    ref = open_clip.load_openai_model(str(ckpt), precision="fp32", device="cpu").eval()
    pixels = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    ids = tokens()
    with torch.no_grad():
        img, txt = ref.encode_image(pixels).numpy(), ref.encode_text(ids).numpy()
    got_img, got_txt = vitamin_features(tmp_path, ckpt, pixels, ids)
    assert_close(got_img, img)
    assert_close(got_txt, txt)
    proc = info(ckpt)
    assert proc.returncode == 0 and "QuickGELU" in proc.stderr, proc.stderr


def test_torchscript_class_that_restores_itself_with_code_is_refused(tmp_path):
    """A scripted module with __getstate__/__setstate__: its state is whatever
    that code returns, so reading it would mean running the archive's code."""

    class Stateful(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x * self.w

        @torch.jit.export
        def __getstate__(self):
            return (self.w, self.training)

        @torch.jit.export
        def __setstate__(self, state):
            self.w = state[0]
            self.training = state[1]

    torch.jit.script(Stateful()).save(str(tmp_path / "m.pt"))
    proc = info(tmp_path / "m.pt")
    assert proc.returncode != 0 and "__setstate__" in proc.stderr and "runs no code" in proc.stderr, proc.stderr


def test_torchscript_archive_naming_a_foreign_global_is_refused(tmp_path):
    """The archive's data.pkl rewritten to call posix.system: refused by the
    allow-list before anything is built (the zip is rewritten whole, so its
    checksums are right and only the pickle is hostile)."""
    import zipfile

    ckpt = tmp_path / "ViT-tiny.pt"
    openai_archive(ckpt)
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(ckpt) as src, zipfile.ZipFile(bad, "w", zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                data, n = re.subn(rb"c__torch__\.open_clip\.model[^\n]*\nCLIP\n", b"cposix\nsystem\n", data, count=1)
                assert n == 1
            dst.writestr(item.filename, data)
    proc = info(bad)
    assert proc.returncode != 0 and "posix.system" in proc.stderr and "not allowed" in proc.stderr, proc.stderr
