"""Training a ConvNeXt CLIP model (open_clip's TimmModel over timm's
convnext.py trunk) against open_clip, as test_vit_train.py does for ViT and
with the tolerances of test_train_parity.py (its docstring says why): the same
initial weights and batch give the same loss, features and every parameter's
gradient, and 10 AdamW steps with open_clip's cosine schedule the same losses
and final weights.

Towers (open_clip configs given to both sides as open_clip_config.json; the
reference runs in eval mode and vitamin.c with drop path 0, so both are
deterministic):
  * convnext_atto (timm's conv_mlp trunk: MLP weights [out, in, 1, 1]) at
    32 px, linear head;
  * convnext_atto at 64 px with the mlp head (timm_proj "mlp"), in
    micro-batches (4 + 2) with gradient clipping;
  * convnext_tiny (nn.Linear MLP) at 32 px.
Then --lock-image's frozen sets against TimmModel.lock (timm's fine
group_matcher: one group per block), locked training, --grad-checkpointing
bit-identical (with drop path on), and `vitamin train --model ConvNeXt-Atto`
end to end (the checkpoint loads strictly into open_clip)."""
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import refmodel  # noqa: E402
from test_train_lock import _reference_run as _locked_reference_run  # noqa: E402
from test_train_parity import _reference_run  # noqa: E402
from test_vit_train import check_against_reference, run_c, write_dataset  # noqa: E402

torch.set_num_threads(2)

TEXT = {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}


def config(trunk, size, embed=48, proj="linear"):
    return {"embed_dim": embed,
            "vision_cfg": {"timm_model_name": trunk, "timm_model_pretrained": False, "timm_pool": "",
                           "timm_proj": proj, "timm_drop": 0.0, "timm_drop_path": 0.1, "image_size": size},
            "text_cfg": dict(TEXT)}


CASES = {
    "atto-32-linear": (config("convnext_atto", 32), 4, 4),
    "atto-64-mlp-micro": (config("convnext_atto", 64, proj="mlp"), 6, 4),
    "tiny-32-linear": (config("convnext_tiny", 32), 4, 4),
}


def build(cfg, seed=3):
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    return refmodel.randomize(CLIP(**cfg).eval(), seed)


def prepare(tmp_path, case):
    from safetensors.torch import save_file

    cfg, n, micro = CASES[case]
    model = build(cfg)
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    ckpt = tmp_path / "model.safetensors"
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(ckpt))
    size = cfg["vision_cfg"]["image_size"]
    pixels = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(4))
    _, ids = refmodel.random_tokens(n, seed=5)
    np.save(tmp_path / "pixels.npy", pixels.reshape(n, -1).numpy().astype(np.float32))
    np.save(tmp_path / "tokens.npy", ids.numpy().astype(np.float32))
    return model, ckpt, pixels, ids, n, micro


@pytest.mark.parametrize("case", list(CASES))
def test_convnext_gradients_and_steps_match_open_clip(tmp_path, build_dir, case):
    model, ckpt, pixels, ids, n, micro = prepare(tmp_path, case)
    clip_norm = 1.0 if micro != n else None
    out = run_c(build_dir, tmp_path, tmp_path / "open_clip_config.json", ckpt, "out", 10, micro,
                *([clip_norm] if clip_norm else []))
    losses, first = _reference_run(model, pixels, ids, 10, 1e-3, 0.2, 3, clip_norm)
    check_against_reference(out, model, first, losses)


def _frozen_c(build_dir, name, image, text):
    out = subprocess.run([str(build_dir / "testtools" / "train_lock_list"), name, str(image), str(text)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return set(out.split())


def test_convnext_frozen_sets_match_open_clip(build_dir):
    """TimmModel.lock over ConvNeXt: group 0 the stem, one group per block (a
    stage's downsample with its first block), head.norm last; open_clip's
    head is never locked. convnext_atto has 12 blocks, so 14 groups."""
    import open_clip

    model = open_clip.create_model("convnext_tiny", pretrained=None)  # registered config: timm's groups
    small_cfg = config("convnext_atto", 32, embed=96)
    small_cfg["text_cfg"].update(width=96, heads=2, layers=2)
    small = build(small_cfg)
    for name, m, counts in [("convnext_tiny", model, [0, 1, 2, 3, 4, 19, 20, 1000]),
                            ("ConvNeXt-Atto", small, [0, 1, 2, 5, 13, 14])]:
        for count in counts:
            for p in m.parameters():
                p.requires_grad_(True)
            m.lock_image_tower(unlocked_groups=count)
            ref = {n for n, p in m.named_parameters() if not p.requires_grad}
            assert _frozen_c(build_dir, name, count, -1) == ref, f"{name} --lock-image-unlocked-groups {count}"


@pytest.mark.parametrize("unlocked", [2, 3])
def test_convnext_locked_training_matches_open_clip(tmp_path, build_dir, unlocked):
    """2 unlocked groups: head.norm and stage 3's last block (the backward
    stops inside a block); 3: also stage 3's first block with its downsample
    (it stops at the downsample: its parameters train, nothing below)."""
    from safetensors.numpy import load_file

    model, ckpt, pixels, ids, n, _ = prepare(tmp_path, "atto-32-linear")
    before = {k: v.detach().clone().numpy() for k, v in model.state_dict().items()}
    out = run_c(build_dir, tmp_path, tmp_path / "open_clip_config.json", ckpt, "out", 3, n, 1.0, "--lock-image",
                unlocked)
    model.lock_image_tower(unlocked_groups=unlocked)
    _, first_grads = _locked_reference_run(model, pixels, ids, 3, 1e-3, 0.2, 3, 1.0)
    final = load_file(str(out / "final.safetensors"))
    grads = load_file(str(out / "grads.safetensors"))
    for pname, p in model.named_parameters():
        if p.requires_grad:
            ref = first_grads[pname]
            assert np.abs(grads[pname].reshape(ref.shape) - ref).max() <= 2e-4 * np.abs(ref).max() + 1e-8, pname
            assert np.abs(final[pname].reshape(p.shape) - p.detach().numpy()).max() <= 1e-4, pname
        else:
            assert np.array_equal(final[pname].reshape(p.shape), before[pname]), f"frozen {pname} moved"
            assert not np.any(grads[pname]), f"frozen {pname} got a gradient"
    frozen = {n_ for n_, p in model.named_parameters() if not p.requires_grad}
    assert "visual.trunk.stages.3.blocks.1.conv_dw.weight" not in frozen
    assert "visual.trunk.stages.2.blocks.5.conv_dw.weight" in frozen
    for name in ["visual.trunk.stages.3.downsample.1.weight", "visual.trunk.stages.3.blocks.0.conv_dw.weight"]:
        assert (name in frozen) == (unlocked == 2), name


def test_convnext_recompute_is_bit_identical(tmp_path, build_dir):
    cfg, _, _ = CASES["atto-32-linear"]
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    model, ckpt, *_ = prepare(tmp_path, "atto-32-linear")
    args = (build_dir, tmp_path, tmp_path / "open_clip_config.json", ckpt)
    keep = run_c(*args, "keep", 2, 2, 1.0, "--drop-path", 0.5)
    again = run_c(*args, "recompute", 2, 2, 1.0, "--drop-path", 0.5, "--recompute")
    plain = run_c(*args, "plain", 2, 2, 1.0)
    for f in ["grads.safetensors", "features.npy", "losses.npy", "final.safetensors"]:
        assert (keep / f).read_bytes() == (again / f).read_bytes(), f"{f} differs with --recompute"
    assert np.isfinite(np.load(keep / "losses.npy")).all()
    # drop path at 0.5 changed something (the masks are drawn): it is not silently off
    assert (keep / "losses.npy").read_bytes() != (plain / "losses.npy").read_bytes()


def test_vitamin_train_a_convnext_end_to_end(tmp_path, vitamin_cli):
    """Two steps of ConvNeXt-Atto from timm's init with drop path 0.1: the
    checkpoint is open_clip's CLIP layout and loads strictly into open_clip's
    model of the written open_clip_config.json; vitamin.c embeds with it as
    open_clip does."""
    import open_clip
    from safetensors.torch import load_file

    write_dataset(tmp_path, 8)
    proc = subprocess.run([str(vitamin_cli), "train", "--model", "ConvNeXt-Atto", "--train-data",
                           str(tmp_path / "d.csv"), "--batch-size", "4", "--steps", "2", "--save-dir",
                           str(tmp_path / "run"), "--log", str(tmp_path / "log.jsonl"), "--threads", "2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    losses = [json.loads(l)["loss"] for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(np.isfinite(losses))
    ck = tmp_path / "run" / (tmp_path / "run" / "latest").read_text().strip()
    sd = load_file(str(ck / "open_clip_model.safetensors"))
    cfg = json.loads((ck / "open_clip_config.json").read_text())["model_cfg"]
    assert cfg["vision_cfg"]["timm_model_name"] == "convnext_atto" and cfg["embed_dim"] == 96
    from open_clip.model import CLIP

    model = CLIP(**cfg).eval()
    model.load_state_dict(sd, strict=True)
    gamma = sd["visual.trunk.stages.0.blocks.0.gamma"]
    assert gamma.abs().max() < 1e-2  # timm's ls_init_value 1e-6, moved by two AdamW steps of at most lr each
