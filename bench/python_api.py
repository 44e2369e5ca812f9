"""Python overhead, measured: `vitamin` (the package) vs open_clip in one
process, same model file, same input, same thread count.

  .venv/bin/python bench/python_api.py                     # ViTamin-S, batch 32, 2 threads
  .venv/bin/python bench/python_api.py --model ViTamin-B --batch 8 --threads 1

Rows: open_clip's encode_image (torch, no_grad, eval); vitamin's
model.encode_image (numpy in, numpy out; then torch in, torch out); and the
extension call underneath (`_core.encode_pixels`, no Python wrapper) — the
gap between the last two is all the wrapper costs. Each row: best of
--repeats timed windows of --seconds. Writes bench/python_api.md."""
import argparse
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rate(fn, batch, seconds, repeats):
    fn()  # warm-up (allocations, packing caches)
    best = 0.0
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            fn()
            n += 1
        best = max(best, n * batch / (time.perf_counter() - start))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViTamin-S")
    ap.add_argument("--checkpoint", help="default data/bench/MODEL/pytorch_model.bin (made by bench/run.py)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "python_api.md"))
    a = ap.parse_args()
    ckpt = a.checkpoint or os.path.join(ROOT, "data", "bench", a.model, "pytorch_model.bin")
    if not os.path.exists(ckpt):
        sys.exit(f"{ckpt} is missing: make it with .venv/bin/python scripts/make_random_checkpoint.py {a.model} "
                 f"{os.path.dirname(ckpt)}")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import open_clip
    import torch

    import vitamin

    torch.set_num_threads(a.threads)
    ref = open_clip.create_model(a.model, pretrained=ckpt).eval()
    model = vitamin.create_model(a.model, pretrained=ckpt, threads=a.threads)
    s = model.visual.image_size[0]
    x = np.random.default_rng(0).standard_normal((a.batch, 3, s, s), dtype=np.float32)
    xt = torch.from_numpy(x)
    out = np.empty((a.batch, model.embed_dim), np.float32)

    def torch_call():
        with torch.no_grad():
            ref.encode_image(xt)

    rows = [
        ("open_clip encode_image (torch)", rate(torch_call, a.batch, a.seconds, a.repeats)),
        ("vitamin encode_image (numpy)", rate(lambda: model.encode_image(x), a.batch, a.seconds, a.repeats)),
        ("vitamin encode_image (torch)", rate(lambda: model.encode_image(xt), a.batch, a.seconds, a.repeats)),
        ("vitamin._core.encode_pixels", rate(lambda: model._core.encode_pixels(x, a.batch, False, out, a.threads),
                                             a.batch, a.seconds, a.repeats)),
    ]
    with torch.no_grad():
        err = float(np.abs(model.encode_image(x) - ref.encode_image(xt).numpy()).max())
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    base = rows[0][1]
    lines = [f"# Python API, {a.model}, batch {a.batch}, {a.threads} threads",
             "",
             f"{cpu}; Python {platform.python_version()}, torch {torch.__version__}, open_clip "
             f"{open_clip.__version__}, vitamin {vitamin.__version__}; best of {a.repeats} x {a.seconds:g} s;"
             f" max |vitamin - open_clip| = {err:.1e}",
             "",
             "| call | images/s | vs open_clip |",
             "|---|---|---|"]
    lines += [f"| {name} | {r:.2f} | {r / base:.2f}x |" for name, r in rows]
    wrapper = 1 - rows[1][1] / rows[3][1]
    lines += ["", f"Wrapper cost (numpy encode_image vs the bare extension call): {100 * wrapper:.1f}% of the time."]
    text = "\n".join(lines) + "\n"
    print(text)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
