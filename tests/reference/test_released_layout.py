"""Released ViTamin checkpoints load as published (model/config_json.c,
model/config_resolve.c): the authors' config.json and preprocessor_config.json
of every Hugging Face repo resolve to the right family member, and random-weight
checkpoints laid out exactly as the repos are (torch.save of the fp32 state dict
as pytorch_model.bin, the authors' config.json beside it) embed like open_clip.

Tolerance: unit-norm embeddings, max abs error <= 1e-4 (fp32), as every parity
test here."""
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

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from refmodel import build_model, save_checkpoint  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
VITAMIN = str(BUILD / "vitamin")
RESOLVE = str(BUILD / "testtools" / "config_resolve")

# The released repos' config.json fields: (repo, vision_cfg.timm_model_name,
# vision_cfg.image_size, embed_dim, text width / heads / layers, the family
# member it must resolve to). Where they come from: the hub repos' config.json
# files as their "Files and versions" pages show them (L2-384px names
# vitamin_large_384 with embed 1024 and text 1024/16/24; B-LTT vitamin_base,
# 768, 768/12/12; XL-384px vitamin_xlarge_384 at 384; XL-256px-s13B
# vitamin_xlarge_256, 1152/16/27) and the released-checkpoint issue's list
# (vitamin_large for L-224px, vitamin_large_336 for L-336px, vitamin_xlarge_256
# for XL-256px). The S, S-LTT, B, L2-224/256/336 repos are not quoted
# anywhere; they follow the authors' own open_clip model_configs in their
# repository Beckschen/ViTamin (short trunk names without _224, L2 on the
# vitamin_large* trunks).
RELEASED = [
    ("ViTamin-S", "vitamin_small", 224, 384, 384, 6, 12, "ViTamin-S"),
    ("ViTamin-S-LTT", "vitamin_small", 224, 768, 768, 12, 12, "ViTamin-S-LTT"),
    ("ViTamin-B", "vitamin_base", 224, 512, 512, 8, 12, "ViTamin-B"),
    ("ViTamin-B-LTT", "vitamin_base", 224, 768, 768, 12, 12, "ViTamin-B-LTT"),
    ("ViTamin-L-224px", "vitamin_large", 224, 768, 768, 12, 12, "ViTamin-L"),
    ("ViTamin-L-256px", "vitamin_large_256", 256, 768, 768, 12, 12, "ViTamin-L-256"),
    ("ViTamin-L-336px", "vitamin_large_336", 336, 768, 768, 12, 12, "ViTamin-L-336"),
    ("ViTamin-L-384px", "vitamin_large_384", 384, 768, 768, 12, 12, "ViTamin-L-384"),
    ("ViTamin-L2-224px", "vitamin_large", 224, 1024, 1024, 16, 24, "ViTamin-L2"),
    ("ViTamin-L2-256px", "vitamin_large_256", 256, 1024, 1024, 16, 24, "ViTamin-L2-256"),
    ("ViTamin-L2-336px", "vitamin_large_336", 336, 1024, 1024, 16, 24, "ViTamin-L2-336"),
    ("ViTamin-L2-384px", "vitamin_large_384", 384, 1024, 1024, 16, 24, "ViTamin-L2-384"),
    ("ViTamin-XL-256px", "vitamin_xlarge_256", 256, 1152, 1152, 16, 27, "ViTamin-XL-256"),
    ("ViTamin-XL-336px", "vitamin_xlarge_336", 336, 1152, 1152, 16, 27, "ViTamin-XL-336"),
    ("ViTamin-XL-384px", "vitamin_xlarge_384", 384, 1152, 1152, 16, 27, "ViTamin-XL-384"),
    ("ViTamin-XL-256px-s13B", "vitamin_xlarge_256", 256, 1152, 1152, 16, 27, "ViTamin-XL-256"),
]
# Families per member, for the numbers each must come out with.
TRUNK_WIDTH = {"S": 384, "B": 768, "L": 1024, "L2": 1024, "XL": 1152}
TRUNK_DEPTH = {"S": 14, "B": 14, "L": 31, "L2": 31, "XL": 32}
OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]


def authors_config(trunk, image_size, embed, tw, th, tl):
    """config.json as the authors' repos hold it (HF AutoConfig + open_clip fields)."""
    return {
        "architectures": ["ViTaminCLIP"],
        "auto_map": {"AutoConfig": "configuration_vitamin.ViTaminConfig", "AutoModel": "model.ViTaminCLIP"},
        "embed_dim": embed,
        "vision_cfg": {"timm_model_name": trunk, "timm_model_pretrained": False, "timm_pool": "", "timm_proj": "linear",
                       "timm_drop": 0.0, "timm_drop_path": 0.1, "image_size": image_size},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": tw, "heads": th, "layers": tl},
    }


def preprocessor_config(size):
    """preprocessor_config.json (CLIPImageProcessor) as the repos hold it."""
    return {"crop_size": size, "do_center_crop": True, "do_normalize": True, "do_resize": True,
            "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": OPENAI_MEAN, "image_std": OPENAI_STD,
            "resample": 3, "size": size}


def resolve(tmp_path, config, preprocessor=None, expect_ok=True):
    (tmp_path / "config.json").write_text(json.dumps(config) if not isinstance(config, str) else config)
    args = [RESOLVE, str(tmp_path / "config.json")]
    if preprocessor is not None:
        (tmp_path / "preprocessor_config.json").write_text(json.dumps(preprocessor))
        args.append(str(tmp_path / "preprocessor_config.json"))
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if expect_ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def fields(stdout):
    first = stdout.splitlines()[0]
    return dict(kv.split("=", 1) for kv in first.split())


@pytest.mark.parametrize("repo,trunk,size,embed,tw,th,tl,member", RELEASED, ids=[r[0] for r in RELEASED])
def test_released_config_resolves(tmp_path, repo, trunk, size, embed, tw, th, tl, member):
    proc = resolve(tmp_path, authors_config(trunk, size, embed, tw, th, tl), preprocessor_config(size))
    got = fields(proc.stdout)
    assert got["name"] == member, proc.stdout
    family = member.split("-")[1]
    assert int(got["image"]) == size and int(got["embed"]) == embed
    assert int(got["width"]) == TRUNK_WIDTH[family] and int(got["depth"]) == TRUNK_DEPTH[family]
    assert got["text"] == f"{tw}/{th}/{tl}"
    assert "note:" not in proc.stdout, proc.stdout  # a consistent release says nothing
    # timm's own trunk name (vitamin_small_224, vitamin_large2_384, ...) resolves to the same member.
    timm_family = {"S": "small", "B": "base", "L": "large", "L2": "large2", "XL": "xlarge"}[family]
    proc = resolve(tmp_path, authors_config(f"vitamin_{timm_family}_{size}", size, embed, tw, th, tl))
    assert fields(proc.stdout)["name"] == member and "note:" not in proc.stdout


def test_l2_is_not_reported_as_l(tmp_path):
    """The L2-384px repo names vitamin_large_384, the L-384px trunk: the text tower tells them apart."""
    l2 = fields(resolve(tmp_path, authors_config("vitamin_large_384", 384, 1024, 1024, 16, 24)).stdout)
    l = fields(resolve(tmp_path, authors_config("vitamin_large_384", 384, 768, 768, 12, 12)).stdout)
    assert (l2["name"], l["name"]) == ("ViTamin-L2-384", "ViTamin-L-384")
    assert l2["repo"] == "jienengchen/ViTamin-L2-384px" and l["repo"] == "jienengchen/ViTamin-L-384px"


def test_image_size_disagreeing_with_trunk_is_a_note(tmp_path):
    # The authors' own ViTamin-L-384.json (Beckschen/ViTamin) says image_size 336: the trunk's size wins, loudly.
    proc = resolve(tmp_path, authors_config("vitamin_large_384", 336, 768, 768, 12, 12))
    assert fields(proc.stdout)["name"] == "ViTamin-L-384" and fields(proc.stdout)["image"] == "384"
    assert "note:" in proc.stdout and "image_size 336" in proc.stdout


def test_unknown_vitamin_trunk_falls_back_to_shapes(tmp_path):
    proc = resolve(tmp_path, authors_config("vitamin_huge_224", 224, 768, 768, 12, 12))
    assert proc.stdout.startswith("found=0")
    assert "vitamin_huge_224" in proc.stdout and "tensor shapes" in proc.stdout


def test_custom_pairing_is_named_and_noted(tmp_path):
    proc = resolve(tmp_path, authors_config("vitamin_small", 224, 512, 512, 8, 12))
    got = fields(proc.stdout)
    assert got["name"] == "ViTamin-S-custom" and got["embed"] == "512" and got["text"] == "512/8/12"
    assert got["repo"] == "-" and "no released ViTamin model pairs" in proc.stdout


def test_preprocessor_disagreement_is_reported(tmp_path):
    pre = preprocessor_config(224)
    pre.update(crop_size={"height": 256, "width": 256}, size={"shortest_edge": 288}, resample=2,
               image_mean=[0.5, 0.5, 0.5])
    proc = resolve(tmp_path, authors_config("vitamin_small", 224, 384, 384, 6, 12), pre)
    notes = [line for line in proc.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 4, proc.stdout
    assert any("crop_size 256" in n for n in notes) and any("size 288" in n for n in notes)
    assert any("resample 2" in n for n in notes) and any("image_mean" in n for n in notes)


def test_open_clip_vit_config_resolves(tmp_path):
    """An open_clip ViT config (vision_cfg with layers/patch_size) names the
    registered ViT config with those numbers."""
    proc = resolve(tmp_path, {"embed_dim": 512, "vision_cfg": {"layers": 12, "width": 768, "patch_size": 16},
                              "text_cfg": {"width": 512, "heads": 8, "layers": 12}})
    got = fields(proc.stdout)
    assert got["name"] == "ViT-B-16" and int(got["image"]) == 224 and int(got["width"]) == 768, proc.stdout


@pytest.mark.parametrize("config,message", [
    ("{not json", "not valid JSON"),
    ("[1, 2, 3]", "not a JSON object"),
    (json.dumps({"vision_cfg": {"timm_model_name": 7}}), "must be a string"),
    (json.dumps(authors_config("convnext_zepto_rms", 224, 512, 512, 8, 12)), "ConvNeXt trunk vitamin.c does not build"),
    (json.dumps({**authors_config("convnext_base", 224, 512, 512, 8, 12),
                 "vision_cfg": {"timm_model_name": "convnext_base", "timm_proj": "none"}}), "timm_proj 'none'"),
    # transformers' CLIPModel configs load (test_vit_checkpoints.py); one without its towers' configs does not.
    (json.dumps({"model_type": "clip", "architectures": ["CLIPModel"], "projection_dim": 512}),
     "needs vision_config and text_config"),
    (json.dumps({"embed_dim": 512, "vision_cfg": {"layers": 12, "width": 768, "patch_size": 16,
                                                  "attentional_pool": True}}), "vision_cfg.attentional_pool"),
    (json.dumps(authors_config("vitamin_small", 230, 384, 384, 6, 12)), "multiple of 16"),
    (json.dumps(authors_config("vitamin_small", 224, 384, 384, 7, 12)), "not divisible"),
    (json.dumps(authors_config("vitamin_small", -3, 384, 384, 6, 12)), "image_size"),
    (json.dumps({"model_cfg": {"embed_dim": 96, "vision_cfg": {"timm_model_name": "vitamin_tiny_32", "image_size": 32},
                               "text_cfg": {"width": 96, "heads": 2, "layers": 2}},
                 "vitamin_cfg": {"name": "ViTamin-Deep", "timm_name": "", "stem_width": 16, "stage_widths": [16, 32],
                                 "stage_depths": [10, 10], "width": 96, "depth": 2, "heads": 2, "mlp_hidden": 192,
                                 "pos_embed": True}}), "MBConv blocks"),
    (json.dumps({"model_cfg": {"embed_dim": 96, "vision_cfg": {"timm_model_name": "vitamin_tiny_32", "image_size": 32},
                               "text_cfg": {"width": 96, "heads": 2, "layers": 2}},
                 "vitamin_cfg": {"name": "ViTamin-Tiny", "timm_name": "", "stem_width": 16, "stage_widths": [16, 32],
                                 "stage_depths": [2, 4], "width": 96, "depth": 2, "heads": 2, "mlp_hidden": 192,
                                 "mlp": "relu", "pos_embed": True}}), "vitamin_cfg.mlp"),
], ids=["not-json", "array", "trunk-type", "convnext-unknown", "convnext-proj-none", "transformers-clip", "open-clip-vit-attn-pool", "size", "heads",
        "negative", "too-many-mbconv", "unknown-mlp"])
def test_bad_configs(tmp_path, config, message):
    proc = resolve(tmp_path, config, expect_ok=False)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert "config.json" in proc.stderr


@pytest.mark.parametrize("pre,message", [("{", "not valid JSON"), ('{"crop_size": "big"}', "crop_size"),
                                         ('{"image_mean": [1, 2]}', "image_mean")])
def test_bad_preprocessor_configs(tmp_path, pre, message):
    (tmp_path / "config.json").write_text(json.dumps(authors_config("vitamin_small", 224, 384, 384, 6, 12)))
    (tmp_path / "preprocessor_config.json").write_text(pre)
    proc = subprocess.run([RESOLVE, str(tmp_path / "config.json"), str(tmp_path / "preprocessor_config.json")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and message in proc.stderr and "preprocessor_config.json" in proc.stderr


# ------------------------------------------------------------ real layouts

def skimage_photos():
    import skimage

    d = pathlib.Path(skimage.__file__).parent / "data"
    return [str(d / p) for p in ["astronaut.png", "chelsea.png", "rocket.jpg"]]


def open_clip_embed(model, size, images, texts):
    import open_clip
    from PIL import Image

    preprocess = open_clip.image_transform(size, is_train=False)
    tok = open_clip.get_tokenizer("ViTamin-S")
    with torch.no_grad():
        img = model.encode_image(torch.stack([preprocess(Image.open(p)) for p in images]), normalize=True)
        txt = model.encode_text(tok(texts), normalize=True)
    return img.numpy(), txt.numpy()


def lay_out_repo(d, model, repo_row, layout):
    """A directory laid out like the hub repo: the fp32 state dict as pytorch_model.bin (plain-CLIP keys for the
    S/B/L2 repos, whose authors' configs have no custom_text), the authors' config.json and preprocessor_config.json,
    and the remote-code files the repos carry, which are never read."""
    _, trunk, size, embed, tw, th, tl, _ = repo_row
    save_checkpoint(model, str(d / "pytorch_model.bin"), layout=layout)
    (d / "config.json").write_text(json.dumps(authors_config(trunk, size, embed, tw, th, tl), indent=2))
    (d / "preprocessor_config.json").write_text(json.dumps(preprocessor_config(size), indent=2))
    for name in ["configuration_vitamin.py", "model.py", "timm_model.py", "vitamin.py"]:
        (d / name).write_text("raise SystemExit('remote code must never run')\n")


LOAD_CASES = [("ViTamin-S", "plain_clip"), ("ViTamin-B-LTT", "open_clip"), ("ViTamin-L-384px", "open_clip")]


@pytest.mark.parametrize("repo,layout", LOAD_CASES, ids=[c[0] for c in LOAD_CASES])
def test_release_layout_embeds_like_open_clip(tmp_path, repo, layout):
    row = next(r for r in RELEASED if r[0] == repo)
    member, size = row[7], row[2]
    d = tmp_path / repo
    d.mkdir()
    model = build_model(member, seed=11)
    lay_out_repo(d, model, row, layout)
    texts = ["a photo of a cat", "a rocket on the launch pad"]
    out = tmp_path / "e.npy"
    args = [VITAMIN, "embed", "-m", str(d), "-o", str(out)]
    for p in skimage_photos():
        args += ["--image", p]
    for t in texts:
        args += ["--text", t]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    assert "note:" not in proc.stderr, proc.stderr
    got = np.load(out)
    ref_img, ref_txt = open_clip_embed(model, size, skimage_photos(), texts)
    n = len(skimage_photos())
    err = max(np.abs(got[:n] - ref_img).max(), np.abs(got[n:] - ref_txt).max())
    assert err <= 1e-4, f"{repo}: embeddings differ by {err}"
    info = subprocess.run([VITAMIN, "info", "-m", str(d)], capture_output=True, text=True, timeout=600)
    assert info.returncode == 0 and f"model:        {member}\n" in info.stdout, info.stdout + info.stderr
    print(f"{repo}: max abs error {err:.2e}")
    if repo == "ViTamin-S":  # the library loads the directory too (vt_model_load), not only the CLI
        pix = tmp_path / "pixels.f32"
        np.zeros((1, 3, size, size), np.float32).tofile(pix)
        trace = subprocess.run([str(BUILD / "testtools" / "vt_trace"), str(d), str(tmp_path), "--pixels", str(pix), "1"],
                               capture_output=True, text=True, timeout=600)
        assert trace.returncode == 0, trace.stderr


@pytest.fixture(scope="module")
def s_repo(tmp_path_factory):
    d = tmp_path_factory.mktemp("ViTamin-S")
    lay_out_repo(d, build_model("ViTamin-S", seed=12), RELEASED[0], "plain_clip")
    return d


@pytest.mark.parametrize("change,field,tensor", [
    (dict(embed_dim=768), "embed_dim", "visual.head.proj.weight"),
    (dict(vision_cfg=dict(timm_model_name="vitamin_base")), "timm_model_name", "visual.trunk.patch_embed"),
    (dict(text_cfg=dict(width=512, heads=8)), "text_cfg.width", "text.token_embedding.weight"),
    (dict(text_cfg=dict(layers=6)), "text_cfg.layers", "text.transformer.resblocks"),
    (dict(text_cfg=dict(context_length=64)), "text_cfg.context_length", "text.positional_embedding"),
    (dict(vision_cfg=dict(timm_model_name="vitamin_small_256")), "vision_cfg.image_size", "visual.trunk.pos_embed"),
], ids=["embed", "trunk", "text-width", "text-layers", "context", "image-size"])
def test_config_that_lies_about_sizes(s_repo, tmp_path, change, field, tensor):
    """A config.json that contradicts the tensors: an error naming the field and the tensor, never a crash."""
    d = tmp_path / "repo"
    d.mkdir()
    (d / "pytorch_model.bin").symlink_to(s_repo / "pytorch_model.bin")
    cfg = authors_config("vitamin_small", 224, 384, 384, 6, 12)
    for key, value in change.items():
        if isinstance(value, dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    if "timm_model_name" in change.get("vision_cfg", {}):
        cfg["vision_cfg"].pop("image_size")
    (d / "config.json").write_text(json.dumps(cfg))
    proc = subprocess.run([VITAMIN, "info", "-m", str(d)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert field in proc.stderr and tensor in proc.stderr and "config.json" in proc.stderr, proc.stderr
    assert "--model-name" in proc.stderr


def test_no_config_falls_back_to_shapes_with_a_note(s_repo, tmp_path):
    d = tmp_path / "bare"
    d.mkdir()
    (d / "pytorch_model.bin").symlink_to(s_repo / "pytorch_model.bin")
    proc = subprocess.run([VITAMIN, "info", "-m", str(d)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "model:        ViTamin-S\n" in proc.stdout
    notes = [line for line in proc.stderr.splitlines() if "note:" in line]
    assert len(notes) == 1 and "inferred from the tensor shapes" in notes[0]


def test_model_name_overrides_config(s_repo, tmp_path):
    proc = subprocess.run([VITAMIN, "info", "-m", str(s_repo), "--model-name", "ViTamin-S"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0 and "model:        ViTamin-S\n" in proc.stdout
    # --pretrained PATH with -m NAME, as open_clip's create_model(name, pretrained=path)
    proc = subprocess.run([VITAMIN, "info", "-m", "ViTamin-S", "--pretrained", str(s_repo / "pytorch_model.bin")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "model:        ViTamin-S\n" in proc.stdout, proc.stderr
    proc = subprocess.run([VITAMIN, "info", "-m", "ViTamin-S", "--pretrained", "laion2b"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 or proc.returncode == 1
    assert "datacomp1b" in proc.stderr
