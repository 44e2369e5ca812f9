"""PyTorch side of the training benchmark: open_clip's model in train mode,
ClipLoss, AdamW (open_clip's groups and defaults), one random batch, `steps`
timed steps after one warm-up step — the same work as bench/train_bench.c.
Prints one JSON line.
  .venv/bin/python bench/train_ref_bench.py --model ViTamin-S --batch 32 --steps 3 --threads 2"""
import argparse
import json
import os
import resource
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="ViTamin-S")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import torch
    import open_clip

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = open_clip.create_model(a.model, pretrained=None)
    model.train()
    size = model.visual.trunk.patch_embed.img_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    pixels = torch.randn(a.batch, 3, size, size)
    ids = torch.zeros(a.batch, 77, dtype=torch.long)
    ids[:, 0] = 49406
    ids[:, 1:11] = torch.randint(256, 40256, (a.batch, 10))
    ids[:, 11] = 49407
    named = list(model.named_parameters())
    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
    opt = torch.optim.AdamW([
        {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
        {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": 0.2},
    ], lr=1e-4, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = open_clip.ClipLoss()
    t0 = None
    for s in range(a.steps + 1):
        if s == 1:
            t0 = time.perf_counter()
        opt.zero_grad()
        img, txt, scale = model(pixels, ids)
        loss = loss_fn(img, txt, scale)
        loss.backward()
        opt.step()
    per_step = (time.perf_counter() - t0) / a.steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"model": a.model, "batch": a.batch, "threads": a.threads, "images_per_s": a.batch / per_step,
                      "seconds_per_step": per_step, "peak_rss_mb": rss, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
