"""Reference side of the benchmark: one engine, one model, one thread count,
in its own process (so its peak RSS and thread settings are its own). Prints one
JSON object in the same shape as build/bench/engine_bench.

  ref_bench.py --engine torch|torch_compile|onnxruntime|openvino --model ViTamin-S|ViT-B-32|...
               --checkpoint PATH --threads N [--image-batches 1,8,32] [--text-batches 1,64]
"""
import argparse
import json
import os
import sys
import time

T0 = time.perf_counter()


def rss_mb():
    # VmHWM: ru_maxrss survives exec and would include the parent's size.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def timed(fn, seconds):
    fn()  # warm-up
    n, start, best = 0, time.perf_counter(), 1e30
    while time.perf_counter() - start < seconds or n < 2:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        n += 1
    return n / (time.perf_counter() - start), best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--engine", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--image-batches", default="1,8,32")
    ap.add_argument("--text-batches", default="1,64")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--onnx-dir", default="data/bench/onnx")
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    import open_clip

    model = open_clip.create_model(a.model, pretrained=a.checkpoint).eval()
    # ViTamin: the timm trunk's size; a ViT: open_clip VisionTransformer's.
    # ViTamin's trunk knows its own size (XL-384's open_clip json says 256); ViT and ConvNeXt take visual.image_size
    trunk_embed = getattr(getattr(model.visual, "trunk", None), "patch_embed", None)
    size = (trunk_embed.img_size if trunk_embed is not None else model.visual.image_size)[0]
    image_batches = [int(b) for b in a.image_batches.split(",")]
    text_batches = [int(b) for b in a.text_batches.split(",")]
    gen = torch.Generator().manual_seed(0)
    pixels = {b: torch.randn(b, 3, size, size, generator=gen) for b in image_batches}
    ids = torch.zeros(64, 77, dtype=torch.long)
    for t in range(64):
        ids[t, 0] = 49406
        ids[t, 1:11] = torch.tensor([320 + (t * 7 + j * 13) % 4000 for j in range(1, 11)])
        ids[t, 11] = 49407

    if a.engine in ("torch", "torch_compile"):
        visual, text = model.visual, (lambda x: model.encode_text(x))
        if a.engine == "torch_compile":
            visual = torch.compile(model.visual)
            text = torch.compile(model.encode_text)

        def run_image(x):
            with torch.inference_mode():
                return visual(x)

        def run_text(x):
            with torch.inference_mode():
                return text(x)
    else:
        os.makedirs(a.onnx_dir, exist_ok=True)
        img_path = os.path.join(a.onnx_dir, f"{a.model}-visual.onnx")
        txt_path = os.path.join(a.onnx_dir, f"{a.model}-text.onnx")
        if not os.path.exists(img_path):
            torch.onnx.export(model.visual, (pixels[image_batches[0]],), img_path, input_names=["pixels"],
                              output_names=["features"], dynamic_axes={"pixels": {0: "batch"}}, opset_version=17,
                              dynamo=False)

        class Text(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m.encode_text(x)

        if not os.path.exists(txt_path):
            torch.onnx.export(Text(model), (ids[:2],), txt_path, input_names=["ids"], output_names=["features"],
                              dynamic_axes={"ids": {0: "batch"}}, opset_version=17, dynamo=False)
        del model
        if a.engine == "onnxruntime":
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = a.threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            si = ort.InferenceSession(img_path, so, providers=["CPUExecutionProvider"])
            st = ort.InferenceSession(txt_path, so, providers=["CPUExecutionProvider"])
            run_image = lambda x: si.run(None, {"pixels": x.numpy()})  # noqa: E731
            run_text = lambda x: st.run(None, {"ids": x.numpy()})  # noqa: E731
        else:
            import openvino as ov

            core = ov.Core()
            cfg = {"INFERENCE_NUM_THREADS": a.threads, "INFERENCE_PRECISION_HINT": "f32",
                   "PERFORMANCE_HINT": "LATENCY"}
            ci = core.compile_model(core.read_model(img_path), "CPU", cfg)
            ct = core.compile_model(core.read_model(txt_path), "CPU", cfg)
            run_image = lambda x: ci(x.numpy())  # noqa: E731
            run_text = lambda x: ct(x.numpy())  # noqa: E731

    run_image(pixels[image_batches[0]][:1])
    first = time.perf_counter() - T0
    rss1 = rss_mb()
    out = {"engine": a.engine, "model": a.model, "threads": a.threads, "first_embedding_s": round(first, 3),
           "peak_rss_batch1_mb": round(rss1, 1), "images": {}, "texts": {}}
    for b in image_batches:
        rate, best = timed(lambda: run_image(pixels[b]), a.seconds)
        out["images"][str(b)] = {"images_per_s": round(rate * b, 3), "best_batch_latency_ms": round(best * 1e3, 2)}
        print(json.dumps({"progress": f"{a.engine} {a.model} batch {b}: {rate * b:.2f} img/s"}), file=sys.stderr)
    for b in text_batches:
        rate, _ = timed(lambda: run_text(ids[:b]), a.seconds)
        out["texts"][str(b)] = {"texts_per_s": round(rate * b, 3)}
    out["peak_rss_mb"] = round(rss_mb(), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
