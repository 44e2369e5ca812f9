"""--lock-image / --lock-text with unlocked groups, against open_clip.

1. The set of frozen tensors (tests/tools/train_lock_list, which calls
   train_lock_apply) equals open_clip's requires_grad == False set after
   model.lock_image_tower(unlocked_groups=N) / model.lock_text_tower(
   unlocked_layers=N), for ViTamin-Tiny and ViTamin-S, N = 0..3 and a large N.
2. Training with locks matches open_clip's training loop (its optimizer holds
   only requires_grad parameters, open_clip_train/main.py 339-340): trainable
   gradients and the weights after a few AdamW steps match; frozen tensors are
   bit-for-bit unchanged and get no gradient.
3. `vitamin train` wires the flags (frozen tensors unchanged after a step from
   --pretrained weights; a count without its lock flag is a usage error)."""
import math
import subprocess

import numpy as np
import pytest
import torch

import refmodel
import tiny_models

torch.set_num_threads(1)

COUNTS = [0, 1, 2, 3, 1000]


def _frozen_c(build_dir, name, image, text):
    out = subprocess.run([str(build_dir / "testtools" / "train_lock_list"), name, str(image), str(text)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return set(out.split())


def _frozen_ref(model, image=None, text=None):
    for p in model.parameters():
        p.requires_grad_(True)
    if image is not None:
        model.lock_image_tower(unlocked_groups=image)
    if text is not None:
        model.lock_text_tower(unlocked_layers=text)
    return {n for n, p in model.named_parameters() if not p.requires_grad}


@pytest.mark.parametrize("name", ["ViTamin-Tiny", "ViTamin-S"])
def test_frozen_sets_match_open_clip(build_dir, name):
    import open_clip

    tiny_models.register()
    model = open_clip.create_model(name, pretrained=None)
    seen = set()
    for n in COUNTS:
        ref = _frozen_ref(model, image=n)
        assert _frozen_c(build_dir, name, n, -1) == ref, f"--lock-image-unlocked-groups {n}"
        seen.add(len(ref))
        ref = _frozen_ref(model, text=n)
        assert _frozen_c(build_dir, name, -1, n) == ref, f"--lock-text-unlocked-layers {n}"
        seen.add(len(ref))
    ref = _frozen_ref(model, image=2, text=3)
    assert _frozen_c(build_dir, name, 2, 3) == ref
    assert _frozen_c(build_dir, name, -1, -1) == set()
    # The counts really select different sets (down to nothing frozen).
    assert len(seen) >= 8 and 0 in seen


def _reference_run(model, pixels, ids, steps, lr, wd, warmup, clip_norm):
    """test_train_parity's loop, with open_clip_train's optimizer over requires_grad parameters only."""
    import open_clip
    from open_clip_train.scheduler import cosine_lr

    loss_fn = open_clip.ClipLoss()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
    opt = torch.optim.AdamW([
        {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": wd},
    ], lr=lr, betas=(0.9, 0.98), eps=1e-6)
    sched = cosine_lr(opt, lr, warmup, steps)
    losses, first = [], None
    for step in range(steps):
        sched(step)
        opt.zero_grad()
        img, txt = model.encode_image(pixels), model.encode_text(ids)
        loss = loss_fn(torch.nn.functional.normalize(img, dim=-1), torch.nn.functional.normalize(txt, dim=-1),
                       model.logit_scale.exp())
        loss.backward()
        if step == 0:
            first = {n: p.grad.detach().clone().numpy() for n, p in named}
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
    return losses, first


# (image unlocked groups, text unlocked layers, recompute): the top block only, everything but the
# conv stem (the backward then stops at the tokens), and the head / projection only.
@pytest.mark.parametrize("image,text,recompute", [(2, 2, False), (3, 4, True), (0, 1, False)])
def test_locked_training_matches_open_clip(tmp_path, build_dir, image, text, recompute):
    from safetensors.numpy import load_file

    tiny_models.register()
    name, n, steps, lr, wd, warmup, clip_norm = "ViTamin-Tiny", 6, 4, 1e-3, 0.2, 2, 1.0
    model = refmodel.build_model(name, seed=3)
    ckpt = tmp_path / "model.safetensors"
    refmodel.save_checkpoint(model, str(ckpt), fmt="safetensors")
    initial = {k: v.detach().clone().numpy() for k, v in model.state_dict().items()}
    pixels = refmodel.random_pixels(model, n, seed=4)
    _, ids = refmodel.random_tokens(n, seed=5)
    np.save(tmp_path / "pixels.npy", pixels.reshape(n, -1).numpy().astype(np.float32))
    np.save(tmp_path / "tokens.npy", ids.numpy().astype(np.float32))
    out = tmp_path / "out"
    out.mkdir()
    cmd = [str(build_dir / "testtools" / "train_step_check"), name, str(ckpt), str(tmp_path / "pixels.npy"),
           str(tmp_path / "tokens.npy"), str(out), str(steps), str(lr), str(wd), str(warmup), str(n),
           str(clip_norm), "--lock-image", str(image), "--lock-text", str(text)] + (["--recompute"] if recompute else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr

    model.lock_image_tower(unlocked_groups=image)
    model.lock_text_tower(unlocked_layers=text)
    frozen = {k for k, p in model.named_parameters() if not p.requires_grad}
    assert frozen and len(frozen) < len(initial)
    losses, ref_grads = _reference_run(model, pixels, ids, steps, lr, wd, warmup, clip_norm)

    grads = load_file(str(out / "grads.safetensors"))
    for pname, ref in ref_grads.items():
        got = grads[pname].reshape(ref.shape)
        tol = 2e-4 * np.abs(ref).max() + 1e-8
        assert np.abs(got - ref).max() <= tol, f"gradient of {pname}"
    for pname in frozen:
        assert not grads[pname].any(), f"frozen {pname} got a gradient"
    got_losses = np.load(out / "losses.npy").ravel()
    for s, (a, b) in enumerate(zip(got_losses, losses)):
        assert abs(a - b) <= 1e-4 * abs(b), f"step {s}: loss {a} vs open_clip {b}"
    final = load_file(str(out / "final.safetensors"))
    for pname, p in model.named_parameters():
        got = final[pname].reshape(p.shape)
        if pname in frozen:
            assert np.array_equal(got, initial[pname]), f"frozen {pname} changed"
        else:
            assert np.abs(got - p.detach().numpy()).max() <= 1e-4, f"{pname} after {steps} steps"
            assert not np.array_equal(got, initial[pname]), f"trainable {pname} did not move"


@pytest.fixture(scope="module")
def pretrained_and_data(tmp_path_factory):
    from PIL import Image

    d = tmp_path_factory.mktemp("lockcli")
    tiny_models.register()
    refmodel.save_checkpoint(refmodel.build_model("ViTamin-Tiny", seed=1), str(d / "tiny.safetensors"),
                             fmt="safetensors")
    rng = np.random.default_rng(0)
    with open(d / "train.csv", "w") as f:
        f.write("filepath\ttitle\n")
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(d / f"{i}.png")
            f.write(f"{i}.png\tpicture number {i}\n")
    return d


def test_cli_lock_flags(tmp_path, vitamin_cli, build_dir, pretrained_and_data):
    from safetensors.numpy import load_file

    d = pretrained_and_data
    base = [vitamin_cli, "train", "--model", "ViTamin-Tiny", "--train-data", str(d / "train.csv"), "--batch-size", "4",
            "--steps", "1", "--warmup", "1", "--lr", "1e-3", "--pretrained", str(d / "tiny.safetensors")]
    p = subprocess.run(base + ["--save-dir", str(tmp_path / "ck"), "--lock-image", "--lock-image-unlocked-groups",
                               "2", "--lock-text", "--lock-text-unlocked-layers", "3"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    before = load_file(str(d / "tiny.safetensors"))
    ckpt = tmp_path / "ck" / (tmp_path / "ck" / "latest").read_text().strip()
    after = load_file(str(ckpt / "open_clip_model.safetensors"))
    frozen = _frozen_c(build_dir, "ViTamin-Tiny", 2, 3)
    assert frozen
    for k, v in before.items():
        assert np.array_equal(after[k], v) == (k in frozen), k

    p = subprocess.run(base + ["--lock-image-unlocked-groups", "1"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--lock-image" in p.stderr
    p = subprocess.run(base + ["--lock-text", "--lock-text-unlocked-layers", "-1"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2
    help_text = subprocess.run([vitamin_cli, "train", "--help"], capture_output=True, text=True).stdout
    for flag in ["--lock-image-unlocked-groups", "--lock-text-unlocked-layers", "--grad-checkpointing"]:
        assert flag in help_text
