"""Side-by-side CPU benchmark: vitamin.c vs PyTorch eager (+ torch.compile),
ONNX Runtime and OpenVINO, same machine, same thread counts, same run.

  .venv/bin/python bench/run.py                 # ViTamin-S, -B, ViT-B/32, ViT-B/16, convnext_tiny; 1 thread and all cores
  .venv/bin/python bench/run.py --models ViTamin-S,ViTamin-B,ViTamin-L --engines vitamin,torch

Writes bench/results.md (the table the README quotes) and bench/results.png,
and prints the CPU, ISA, threads and versions. Checkpoints are random weights in
the official layout (data/bench/), made once."""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
GFLOP_PER_IMAGE = {}  # filled from `vitamin info`


def sh(cmd, env=None, timeout=3600):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def cpu_description():
    model, flags = "?", ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name") and model == "?":
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags") and not flags:
            flags = line.split(":", 1)[1]
    isa = [f for f in ["avx2", "avx512f", "avx512_bf16", "amx_bf16"] if f" {f} " in f" {flags} "]
    return model, isa


def ensure_checkpoint(model):
    path = os.path.join(ROOT, "data", "bench", model, "pytorch_model.bin")
    if not os.path.exists(path):
        sh([PY, "scripts/make_random_checkpoint.py", model, os.path.dirname(path)])
    return path


# Engines whose threads are OpenMP's (libgomp): OMP_WAIT_POLICY changes how
# their idle threads wait between parallel regions. Neither setting is best for
# every engine, batch size and machine (here torch 2.13 and vitamin.c were both
# faster with the default than with PASSIVE, most at batch 1), so each of them
# runs under both and every figure is the better of the two. ONNX Runtime and
# OpenVINO have their own thread pools and run once.
OPENMP_ENGINES = ("vitamin", "vitamin_bf16", "torch", "torch_compile")
WAIT_POLICIES = ("default", "PASSIVE")


def engine_env(threads, policy="default"):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    env.pop("OMP_WAIT_POLICY", None)
    if policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    return env


def run_engine_once(engine, model, ckpt, threads, args, policy):
    if engine in ("vitamin", "vitamin_bf16"):
        out = sh([os.path.join(ROOT, "build", "bench", "engine_bench"), ckpt, "--threads", str(threads),
                  "--image-batches", args.image_batches, "--text-batches", args.text_batches,
                  "--seconds", str(args.seconds)] + (["--bf16"] if engine == "vitamin_bf16" else []),
                 env=engine_env(threads, policy))
    else:
        out = sh([PY, "bench/ref_bench.py", "--engine", engine, "--model", model, "--checkpoint", ckpt,
                  "--threads", str(threads), "--image-batches", args.image_batches, "--text-batches",
                  args.text_batches, "--seconds", str(args.seconds)], env=engine_env(threads, policy))
    return json.loads(out.strip().splitlines()[-1])


def best_of(runs):
    """Per figure, the better of the runs (keyed by wait policy); which policy
    gave the batch-8 figure is kept as `wait_policy`."""
    best = json.loads(json.dumps(next(iter(runs.values()))))
    for r in runs.values():
        for b, v in r["images"].items():
            cur = best["images"].setdefault(b, dict(v))
            cur["images_per_s"] = max(cur["images_per_s"], v["images_per_s"])
            cur["best_batch_latency_ms"] = min(cur["best_batch_latency_ms"], v["best_batch_latency_ms"])
        for b, v in r["texts"].items():
            best["texts"][b]["texts_per_s"] = max(best["texts"][b]["texts_per_s"], v["texts_per_s"])
        best["first_embedding_s"] = min(best["first_embedding_s"], r["first_embedding_s"])
        best["peak_rss_batch1_mb"] = min(best["peak_rss_batch1_mb"], r["peak_rss_batch1_mb"])
    b8 = {p: r["images"].get("8", {}).get("images_per_s", 0) for p, r in runs.items()}
    best["wait_policy"] = max(b8, key=b8.get)
    best["by_policy"] = runs
    return best


def run_engine(engine, model, ckpt, threads, args):
    if engine not in OPENMP_ENGINES:
        r = run_engine_once(engine, model, ckpt, threads, args, "default")
        r["wait_policy"] = "-"
        return r
    return best_of({p: run_engine_once(engine, model, ckpt, threads, args, p) for p in WAIT_POLICIES})


def torch_sgemm_gflops(threads, n=2048):
    code = ("import torch,time;torch.set_num_threads(%d);a=torch.randn(%d,%d);b=torch.randn(%d,%d);a@b;"
            "t=time.perf_counter();k=0\nwhile time.perf_counter()-t<2: a@b;k+=1\n"
            "print(2*%d**3*k/(time.perf_counter()-t)/1e9)") % (threads, n, n, n, n, n)
    return float(sh([PY, "-c", code], env=engine_env(threads)).strip())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="ViTamin-S,ViTamin-B,ViT-B-32,ViT-B-16,convnext_tiny")
    ap.add_argument("--engines", default="vitamin,vitamin_bf16,torch,torch_compile,onnxruntime,openvino")
    ap.add_argument("--threads", default=f"1,{os.cpu_count()}")
    ap.add_argument("--image-batches", default="1,8,32")
    ap.add_argument("--text-batches", default="1,64")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    import torch

    cpu, isa = cpu_description()
    versions = {"torch": torch.__version__}
    for mod in ["onnxruntime", "openvino", "open_clip"]:
        try:
            versions[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            versions[mod] = f"unavailable ({e.__class__.__name__})"
    print(f"CPU: {cpu}; ISA: {' '.join(isa)}; cores: {os.cpu_count()}; {platform.platform()}")
    print("versions:", json.dumps(versions))
    for line in sh([os.path.join(ROOT, "build", "vitamin"), "info"]).splitlines():
        if line.startswith(("ViT", "convnext_")):  # ViTamin-*, ViT-* and convnext_* rows
            GFLOP_PER_IMAGE[line.split()[0]] = float(line.split()[-2])

    results, ceilings = [], {}
    for threads in [int(t) for t in args.threads.split(",")]:
        ceil = json.loads(sh([os.path.join(ROOT, "build", "bench", "gemm_bench"), "--threads", str(threads)],
                             env=engine_env(threads)))
        ceil["torch_sgemm_gflops"] = torch_sgemm_gflops(threads)
        ceilings[threads] = ceil
        print(f"threads={threads}: {json.dumps(ceil)}")
        for model in args.models.split(","):
            ckpt = ensure_checkpoint(model)
            for engine in args.engines.split(","):
                t = time.time()
                try:
                    r = run_engine(engine, model, ckpt, threads, args)
                except Exception as e:  # noqa: BLE001
                    print(f"  {engine} {model} t={threads}: FAILED ({str(e).splitlines()[0][:200]})")
                    continue
                r["engine"], r["threads"] = engine, threads
                results.append(r)
                imgs = {b: v["images_per_s"] for b, v in r["images"].items()}
                print(f"  {engine:14s} {model:10s} t={threads}: img/s {imgs} texts {r['texts']} "
                      f"(b8 best with OMP_WAIT_POLICY {r['wait_policy']}) "
                      f"first {r['first_embedding_s']}s rss1 {r['peak_rss_batch1_mb']}MB ({time.time() - t:.0f}s)")
    write_report(args, cpu, isa, versions, ceilings, results)


def write_report(args, cpu, isa, versions, ceilings, results):
    batches = args.image_batches.split(",")
    lines = [f"Machine: {cpu}, {os.cpu_count()} cores, ISA {' '.join(isa)}. Versions: "
             + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
             f"Command: `.venv/bin/python bench/run.py --models {args.models} --engines {args.engines} "
             f"--threads {args.threads}`. fp32 everywhere; random weights in the official checkpoint layout.",
             "OpenMP engines (vitamin, vitamin_bf16, torch, torch_compile) ran twice, with OMP_WAIT_POLICY unset "
             "(libgomp's default: idle threads spin briefly) and with PASSIVE; every figure is the better of the two, "
             "and the `wait (b8)` column names the policy that gave the batch-8 figure. "
             "All runs for one thread count used that many threads (OMP_NUM_THREADS / torch.set_num_threads / "
             "the engines' own options).", ""]
    for threads, c in ceilings.items():
        lines.append(f"Ceilings at {threads} thread(s): FMA peak {c.get('fma_peak_fp32_gflops', 0):.0f} GFLOP/s fp32"
                     + (f", {c['dpbf16_peak_gflops']:.0f} bf16" if "dpbf16_peak_gflops" in c else "")
                     + f"; vitamin.c GEMM 2048³ {c['gemm_square']['gflops']:.0f} GFLOP/s;"
                     f" PyTorch (MKL) sgemm 2048³ {c['torch_sgemm_gflops']:.0f} GFLOP/s.")
    lines += ["", "| model | engine | threads | " + " | ".join(f"img/s b{b}" for b in batches)
              + " | b1 latency ms | GFLOP/s b8 (% of fp32 FMA peak) | text/s b" + " / b".join(args.text_batches.split(","))
              + " | first embedding s | peak RSS b1 MB | wait (b8) |",
              "|" + "---|" * (9 + len(batches))]
    for r in results:
        c = ceilings[r["threads"]]
        gf = GFLOP_PER_IMAGE.get(r["model"], 0)
        b8 = r["images"].get("8", {}).get("images_per_s", 0)
        eff = f"{gf * b8:.0f} ({100 * gf * b8 / c['fma_peak_fp32_gflops']:.0f}%)" if b8 and "fma_peak_fp32_gflops" in c else "-"
        lines.append(f"| {r['model']} | {r['engine']} | {r['threads']} | "
                     + " | ".join(f"{r['images'].get(b, {}).get('images_per_s', 0):.2f}" for b in batches)
                     + f" | {r['images'].get('1', {}).get('best_batch_latency_ms', 0):.0f} | {eff} | "
                     + " / ".join(f"{v['texts_per_s']:.1f}" for v in r["texts"].values())
                     + f" | {r['first_embedding_s']:.2f} | {r['peak_rss_batch1_mb']:.0f} | {r.get('wait_policy', '-')} |")
    with open(args.out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(args.out + ".json", "w") as f:  # every run, both wait policies
        json.dump({"cpu": cpu, "isa": isa, "versions": versions, "ceilings": ceilings, "results": results}, f, indent=1)
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        keys = sorted({(r["model"], r["threads"]) for r in results})
        engines = sorted({r["engine"] for r in results}, key=lambda e: (not e.startswith("vitamin"), e))
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(keys)), 4))
        width = 0.8 / max(1, len(engines))
        for i, e in enumerate(engines):
            ys = [next((r["images"].get("8", {}).get("images_per_s", 0) for r in results
                        if r["engine"] == e and (r["model"], r["threads"]) == k), 0) for k in keys]
            ax.bar([j + i * width for j in range(len(keys))], ys, width, label=e)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))])
        ax.set_xticklabels([f"{m}\n{t} thr" for m, t in keys])
        ax.set_ylabel("images/s at batch 8 (fp32; vitamin_bf16: bf16)")
        ax.set_title(cpu[:60])
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.out + ".png", dpi=100)
    except ImportError:
        print("matplotlib missing: no chart (pip install -r scripts/requirements-bench.txt)")


if __name__ == "__main__":
    main()
