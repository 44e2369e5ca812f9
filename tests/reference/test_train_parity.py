"""Training parity with open_clip: the same initial weights and batch give the
same loss, features and gradient of every parameter, and 10 AdamW steps with
open_clip's cosine schedule give the same losses step by step and the same
final weights.

Reference: open_clip's CustomTextCLIP in eval mode (drop-path off; vitamin.c
runs with drop-path 0 here), ClipLoss, torch.optim.AdamW with open_clip_train's
two parameter groups (main.py: no decay for ndim < 2 / bn / ln / bias /
logit_scale), open_clip_train.scheduler.cosine_lr, logit_scale clamped to
[0, ln 100] after each step.

Tolerances (fp32 both sides, different summation orders):
  loss: 1e-5 relative; features: 1e-4 x max|ref|;
  gradients, per tensor: max|g - g_ref| <= 2e-4 x max|g_ref| + 1e-8 (the
  gradients pass through up to ~30 layers, each adding ~1e-6 relative
  rounding; measured worst 1.2e-5 of max|g_ref|; 2e-4 of the tensor's largest entry still catches any wrong term,
  which shows up at order 1);
  10 steps: loss 1e-4 relative per step; final weights 1e-4 absolute
  (Adam normalises updates, so weights move by ~lr per step whatever the
  gradient scale)."""
import math
import os
import subprocess

import numpy as np
import pytest
import torch

import refmodel
import tiny_models

torch.set_num_threads(2)


def _reference_run(model, pixels, ids, steps, lr, wd, warmup, clip_norm=None):
    import open_clip
    from open_clip_train.scheduler import cosine_lr

    loss_fn = open_clip.ClipLoss()
    named = list(model.named_parameters())
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
        img = model.encode_image(pixels)
        txt = model.encode_text(ids)
        loss = loss_fn(torch.nn.functional.normalize(img, dim=-1), torch.nn.functional.normalize(txt, dim=-1),
                       model.logit_scale.exp())
        loss.backward()
        if step == 0:
            first = {"features": torch.cat([img, txt]).detach().numpy(),
                     "grads": {n: p.grad.detach().clone().numpy() for n, p in named}}
        if clip_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
    return losses, first


@pytest.mark.parametrize("name,n,micro", [("ViTamin-Tiny", 6, 6), ("ViTamin-Tiny", 6, 4), ("ViTamin-S", 3, 3)])
def test_gradients_and_steps_match_open_clip(tmp_path, build_dir, name, n, micro):
    from safetensors.numpy import load_file

    tiny_models.register()
    model = refmodel.build_model(name, seed=3)
    model.eval()
    ckpt = tmp_path / "model.safetensors"
    refmodel.save_checkpoint(model, str(ckpt), fmt="safetensors")
    pixels = refmodel.random_pixels(model, n, seed=4)
    texts, ids = refmodel.random_tokens(n, seed=5)
    np.save(tmp_path / "pixels.npy", pixels.reshape(n, -1).numpy().astype(np.float32))
    np.save(tmp_path / "tokens.npy", ids.numpy().astype(np.float32))
    steps = 10 if name == "ViTamin-Tiny" else 3
    lr, wd, warmup = 1e-3, 0.2, 3
    clip_norm = 1.0 if micro != n else None
    out = tmp_path / "out"
    out.mkdir()
    cmd = [str(build_dir / "testtools" / "train_step_check"), name, str(ckpt), str(tmp_path / "pixels.npy"),
           str(tmp_path / "tokens.npy"), str(out), str(steps), str(lr), str(wd), str(warmup), str(micro)]
    if clip_norm:
        cmd.append(str(clip_norm))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    losses, first = _reference_run(model, pixels, ids, steps, lr, wd, warmup, clip_norm)

    feats = np.load(out / "features.npy")
    ref_f = first["features"]
    assert np.abs(feats - ref_f).max() <= 1e-4 * np.abs(ref_f).max(), "features differ"

    grads = load_file(str(out / "grads.safetensors"))
    assert set(grads) == set(first["grads"])
    worst = []
    for pname, ref in first["grads"].items():
        got = grads[pname].reshape(ref.shape)
        err = np.abs(got - ref).max()
        tol = 2e-4 * np.abs(ref).max() + 1e-8
        worst.append((err / (np.abs(ref).max() + 1e-12), pname))
        assert err <= tol, f"gradient of {pname}: max error {err:.3g} > {tol:.3g}"
    worst.sort(reverse=True)
    print("worst relative gradient errors:", worst[:3])

    got_losses = np.load(out / "losses.npy").ravel()
    for s, (a, b) in enumerate(zip(got_losses, losses)):
        assert abs(a - b) <= 1e-4 * abs(b), f"step {s}: loss {a} vs open_clip {b}"
    final = load_file(str(out / "final.safetensors"))
    for pname, p in model.named_parameters():
        ref = p.detach().numpy()
        err = np.abs(final[pname].reshape(ref.shape) - ref).max()
        assert err <= 1e-4, f"{pname} after {steps} steps: max error {err:.3g}"
