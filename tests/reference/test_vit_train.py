"""Training a ViT CLIP model (open_clip VisionTransformer image tower) against
open_clip, as tests/reference/test_train_parity.py does for ViTamin and with
its tolerances (its docstring says why): the same initial weights and batch
give the same loss, features and every parameter's gradient, and 10 AdamW
steps with open_clip's cosine schedule the same losses and final weights.

Towers (open_clip configs given to both sides as open_clip_config.json):
  * QuickGELU (both towers) with LayerScale and class-token pooling;
  * avg pooling, no ln_pre, mlp_ratio 2.5, GELU, in micro-batches (4 + 2)
    with gradient clipping;
  * avg pooling with final_ln_after_pool.
Then --lock-image's frozen sets for a ViT against open_clip's
VisionTransformer.lock, locked training, --grad-checkpointing bit-identical,
and `vitamin train --model ViT-S-32` end to end (checkpoint loads strictly in
open_clip)."""
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

torch.set_num_threads(2)

BASE = {"embed_dim": 48, "vision_cfg": {"image_size": 32, "layers": 3, "width": 64, "head_width": 32,
                                        "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


def variant(**vision):
    cfg = json.loads(json.dumps(BASE))
    quick = vision.pop("quick_gelu", False)
    cfg["vision_cfg"].update(vision)
    cfg["quick_gelu"] = quick
    return cfg


CASES = {
    "quickgelu-layerscale-tok": (variant(quick_gelu=True, ls_init_value=0.1), 4, 4),
    "avg-noLnPre-ratio2.5-micro": (variant(pool_type="avg", no_ln_pre=True, mlp_ratio=2.5), 6, 4),
    "avg-final-ln-after-pool": (variant(pool_type="avg", final_ln_after_pool=True), 4, 4),
}


def build(cfg, seed=3):
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    c = dict(cfg)
    quick = c.pop("quick_gelu", False)
    return refmodel.randomize(CLIP(**c, quick_gelu=quick).eval(), seed)


def inputs(tmp_path, model, n):
    size = model.visual.image_size[0]
    pixels = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(4))
    _, ids = refmodel.random_tokens(n, seed=5)
    np.save(tmp_path / "pixels.npy", pixels.reshape(n, -1).numpy().astype(np.float32))
    np.save(tmp_path / "tokens.npy", ids.numpy().astype(np.float32))
    return pixels, ids


def prepare(tmp_path, case):
    """The reference model of CASES[case], its config and safetensors
    checkpoint in tmp_path, and the batch (pixels.npy / tokens.npy too)."""
    from safetensors.torch import save_file

    cfg, n, micro = CASES[case]
    model = build(cfg)
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    ckpt = tmp_path / "model.safetensors"
    save_file({k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}, str(ckpt))
    pixels, ids = inputs(tmp_path, model, n)
    return model, ckpt, pixels, ids, n, micro


def run_c(build_dir, tmp_path, model_arg, ckpt, tag, steps, micro, *extra):
    out = tmp_path / tag
    out.mkdir()
    cmd = [str(build_dir / "testtools" / "train_step_check"), str(model_arg), str(ckpt), str(tmp_path / "pixels.npy"),
           str(tmp_path / "tokens.npy"), str(out), str(steps), "1e-3", "0.2", "3", str(micro), *map(str, extra)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out


def check_against_reference(out, model, first, losses):
    from safetensors.numpy import load_file

    feats = np.load(out / "features.npy")
    assert np.abs(feats - first["features"]).max() <= 1e-4 * np.abs(first["features"]).max(), "features differ"
    grads = load_file(str(out / "grads.safetensors"))
    assert set(grads) == set(first["grads"])
    for pname, ref in first["grads"].items():
        err = np.abs(grads[pname].reshape(ref.shape) - ref).max()
        tol = 2e-4 * np.abs(ref).max() + 1e-8
        assert err <= tol, f"gradient of {pname}: max error {err:.3g} > {tol:.3g}"
    got = np.load(out / "losses.npy").ravel()
    for s, (a, b) in enumerate(zip(got, losses)):
        assert abs(a - b) <= 1e-4 * abs(b), f"step {s}: loss {a} vs open_clip {b}"
    final = load_file(str(out / "final.safetensors"))
    for pname, p in model.named_parameters():
        diff = np.abs(final[pname].reshape(p.shape) - p.detach().numpy())
        if pname.endswith("attn.in_proj_bias"):
            # The key bias's true gradient is exactly zero (softmax ignores a
            # constant added to a row of scores; test_mpi.py's docstring), so
            # both sides' gradients are rounding noise that AdamW normalises
            # into updates of up to lr per step: bound that third by lr (a tenth
            # of what 10 steps could move it), the q and v thirds as the rest.
            w = diff.shape[0] // 3
            assert diff[w:2 * w].max() <= 1e-3, f"{pname} (keys) after the steps: {diff[w:2 * w].max():.3g}"
            diff = np.concatenate([diff[:w], diff[2 * w:]])
        assert diff.max() <= 1e-4, f"{pname} after the steps: max error {diff.max():.3g}"


@pytest.mark.parametrize("case", list(CASES))
def test_vit_gradients_and_steps_match_open_clip(tmp_path, build_dir, case):
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


def test_vit_frozen_sets_match_open_clip(build_dir):
    """VisionTransformer.lock's groups: [conv1, class and positional
    embeddings, ln_pre], resblocks but the last, [last resblock, ln_post],
    proj; with 0 unlocked groups everything, proj included."""
    import open_clip

    model = open_clip.create_model("ViT-S-32", pretrained=None)
    for count in [0, 1, 2, 3, 12, 13, 14, 1000]:
        for p in model.parameters():
            p.requires_grad_(True)
        model.lock_image_tower(unlocked_groups=count)
        ref = {n for n, p in model.named_parameters() if not p.requires_grad}
        assert _frozen_c(build_dir, "ViT-S-32", count, -1) == ref, f"--lock-image-unlocked-groups {count}"


def test_vit_locked_training_matches_open_clip(tmp_path, build_dir):
    from safetensors.numpy import load_file

    model, ckpt, pixels, ids, n, _ = prepare(tmp_path, "quickgelu-layerscale-tok")
    before = {k: v.detach().clone().numpy() for k, v in model.state_dict().items()}
    out = run_c(build_dir, tmp_path, tmp_path / "open_clip_config.json", ckpt, "out", 3, n, 1.0, "--lock-image", 2)
    model.lock_image_tower(unlocked_groups=2)
    _, first_grads = _locked_reference_run(model, pixels, ids, 3, 1e-3, 0.2, 3, 1.0)
    first = {"grads": first_grads}
    final = load_file(str(out / "final.safetensors"))
    grads = load_file(str(out / "grads.safetensors"))
    for pname, p in model.named_parameters():
        if p.requires_grad:
            ref = first["grads"][pname]
            assert np.abs(grads[pname].reshape(ref.shape) - ref).max() <= 2e-4 * np.abs(ref).max() + 1e-8, pname
            diff = np.abs(final[pname].reshape(p.shape) - p.detach().numpy())
            if pname.endswith("attn.in_proj_bias"):  # the key third: see check_against_reference
                w = diff.shape[0] // 3
                diff = np.concatenate([diff[:w], diff[2 * w:]])
            assert diff.max() <= 1e-4, pname
        else:
            assert np.array_equal(final[pname].reshape(p.shape), before[pname]), f"frozen {pname} moved"
            assert not np.any(grads[pname]), f"frozen {pname} got a gradient"
    assert any(not p.requires_grad for n_, p in model.named_parameters() if n_.startswith("visual."))


def test_vit_recompute_is_bit_identical(tmp_path, build_dir):
    cfg, n, _ = CASES["quickgelu-layerscale-tok"]
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg}))
    inputs(tmp_path, build(cfg), 5)
    args = (build_dir, tmp_path, tmp_path / "open_clip_config.json", "-")
    keep = run_c(*args, "keep", 2, 4, 1.0)
    again = run_c(*args, "recompute", 2, 4, 1.0, "--recompute")
    for f in ["grads.safetensors", "features.npy", "losses.npy", "final.safetensors"]:
        assert (keep / f).read_bytes() == (again / f).read_bytes(), f"{f} differs with --recompute"
    assert np.isfinite(np.load(keep / "losses.npy")).all()


def write_dataset(tmp_path, n):
    """n random images and a tab-separated d.csv naming them with captions."""
    from PIL import Image

    rng = np.random.default_rng(0)
    lines = ["filepath\ttitle"]
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 44, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        lines.append(f"{tmp_path / f'{i}.png'}\ta picture number {i}")
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")


def test_vitamin_train_a_vit_end_to_end(tmp_path, vitamin_cli):
    """Two steps of ViT-S-32 from open_clip's init: the checkpoint is open_clip's
    CLIP layout (text tower at the top level) and loads strictly into
    open_clip's ViT-S-32; the losses are finite."""
    import open_clip
    from safetensors.torch import load_file

    write_dataset(tmp_path, 8)
    proc = subprocess.run([str(vitamin_cli), "train", "--model", "ViT-S-32", "--train-data", str(tmp_path / "d.csv"),
                           "--batch-size", "4", "--steps", "2", "--save-dir", str(tmp_path / "run"), "--log",
                           str(tmp_path / "log.jsonl"), "--threads", "2"], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    losses = [json.loads(l)["loss"] for l in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(np.isfinite(losses))
    ck = tmp_path / "run" / (tmp_path / "run" / "latest").read_text().strip()
    sd = load_file(str(ck / "open_clip_model.safetensors"))
    assert "token_embedding.weight" in sd and "visual.conv1.weight" in sd
    open_clip.create_model("ViT-S-32", pretrained=None).load_state_dict(sd, strict=True)


def test_drop_path_on_a_vit_is_refused(tmp_path, vitamin_cli):
    (tmp_path / "d.csv").write_text("filepath\ttitle\nx.png\ta\n")
    proc = subprocess.run([str(vitamin_cli), "train", "--model", "ViT-S-32", "--train-data", str(tmp_path / "d.csv"),
                           "--drop-path", "0.1", "--save-dir", str(tmp_path / "run")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "stochastic depth" in proc.stderr, proc.stderr


class _FixedPatchDropout(torch.nn.Module):
    """open_clip's PatchDropout with vitamin.c's picks instead of torch.randn's
    (the selection rule is open_clip's; only the random numbers differ)."""

    def __init__(self, keep):
        super().__init__()
        self.keep = keep

    def forward(self, x):
        cls, rest = x[:, :1], x[:, 1:]
        return torch.cat([cls, rest[torch.arange(x.shape[0])[:, None], self.keep]], dim=1)


@pytest.mark.parametrize("prob,case", [(0.5, "quickgelu-layerscale-tok"), (0.3, "avg-final-ln-after-pool")])
def test_patch_dropout_matches_open_clip_with_the_same_picks(tmp_path, build_dir, prob, case):
    """--force-patch-dropout: each image keeps max(1, int(16 · (1 − p))) of its
    16 patches (8, 11) plus the class token; with open_clip's PatchDropout fed
    the same picks, gradients and 10 steps match as without dropout."""
    model, ckpt, pixels, ids, n, _ = prepare(tmp_path, case)
    out = run_c(build_dir, tmp_path, tmp_path / "open_clip_config.json", ckpt, "out", 10, n, "--patch-dropout", prob)
    keep = np.load(out / "kept.npy").astype(np.int64)
    assert keep.shape == (n, max(1, int(16 * (1 - prob))))
    for row in keep:  # distinct patches of the grid, and not simply the first ones
        assert len(set(row)) == len(row) and row.min() >= 0 and row.max() < 16
    assert len({tuple(sorted(r)) for r in keep}) > 1 and sorted(keep[0]) != list(range(keep.shape[1]))
    model.visual.patch_dropout = _FixedPatchDropout(torch.from_numpy(keep))
    model.train()  # the reference's dropout runs in training mode; nothing else in the tower differs
    losses, first = _reference_run(model, pixels, ids, 10, 1e-3, 0.2, 3, None)
    check_against_reference(out, model, first, losses)


def test_force_patch_dropout_flag(tmp_path, vitamin_cli):
    """Wired into `vitamin train` (a step with it runs, and the loss differs
    from one without), refused for ViTamin and outside [0, 1)."""
    write_dataset(tmp_path, 4)
    losses = {}
    for tag, extra in [("off", []), ("on", ["--force-patch-dropout", "0.5"])]:
        proc = subprocess.run([str(vitamin_cli), "train", "--model", "ViT-S-32", "--train-data",
                               str(tmp_path / "d.csv"), "--batch-size", "4", "--steps", "1", "--save-dir",
                               str(tmp_path / tag), "--log", str(tmp_path / f"{tag}.jsonl"), "--threads", "2",
                               *extra], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        losses[tag] = json.loads((tmp_path / f"{tag}.jsonl").read_text().splitlines()[0])["loss"]
    assert np.isfinite(losses["on"]) and losses["on"] != losses["off"]
    for model, value, needle in [("ViTamin-Tiny", "0.5", "ViTamin"), ("ViT-S-32", "1.0", "[0, 1)")]:
        proc = subprocess.run([str(vitamin_cli), "train", "--model", model, "--train-data", str(tmp_path / "d.csv"),
                               "--force-patch-dropout", value, "--save-dir", str(tmp_path / "bad")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0 and needle in proc.stderr, proc.stderr
