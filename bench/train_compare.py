"""Training throughput, vitamin.c vs PyTorch (open_clip), same machine, same
threads, same run: a fresh model, one random batch, full AdamW steps after a
warm-up step (bench/train_bench.c and bench/train_ref_bench.py do the same work).
Writes bench/train_results.md.

  .venv/bin/python bench/train_compare.py [--model ViTamin-S] [--batch 32] [--steps 2] [--threads 2]"""
import argparse
import json
import os
import platform
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=3600)
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="ViTamin-S")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    # vitamin.c's driver runs as `vitamin train` does: OMP_WAIT_POLICY=PASSIVE
    # unless the environment sets one. PyTorch runs with the policy unset and
    # with PASSIVE, and keeps its faster run (as bench/run.py does).
    def run_with(cmd, policy):
        env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
        env.pop("OMP_WAIT_POLICY", None)
        if policy != "default":
            env["OMP_WAIT_POLICY"] = policy
        return dict(run(cmd, env), policy=policy)

    ours = run_with([os.path.join(ROOT, "build", "bench", "train_bench"), a.model, str(a.batch), str(a.steps)],
                    "PASSIVE")
    ref_cmd = [sys.executable, os.path.join(ROOT, "bench", "train_ref_bench.py"), "--model", a.model, "--batch",
               str(a.batch), "--steps", str(a.steps), "--threads", str(a.threads)]
    ref = max((run_with(ref_cmd, p) for p in ("default", "PASSIVE")), key=lambda r: r["images_per_s"])
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [f"Training step, {a.model}, batch {a.batch}, {a.threads} threads, {a.steps} timed steps after 1 warm-up "
             f"({cpu}, {platform.machine()}, torch {ref['torch']}); PyTorch: the faster of OMP_WAIT_POLICY "
             "unset / PASSIVE", "",
             "| engine | images/s | s/step | peak RSS MB | OMP_WAIT_POLICY |", "|---|---|---|---|---|",
             f"| vitamin.c | {ours['images_per_s']:.2f} | {ours['seconds_per_step']:.2f} | {ours['peak_rss_mb']:.0f} | "
             f"{ours['policy']} |",
             f"| PyTorch (open_clip, eager) | {ref['images_per_s']:.2f} | {ref['seconds_per_step']:.2f} | "
             f"{ref['peak_rss_mb']:.0f} | {ref['policy']} |", "",
             f"vitamin.c / PyTorch: {ours['images_per_s'] / ref['images_per_s']:.2f}x"]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(ROOT, "bench", "train_results.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
