"""Communication and scaling model of data-parallel `vitamin train` (README,
"Training on many machines"). Prints, per model size, the bytes each rank
sends per step and the expected scaling efficiency at 8, 64 and 512 workers.

  .venv/bin/python bench/scaling_model.py [--bandwidth-gbit 25] [--latency-us 20]
      [--worker-gflops 300] [--local-batch 64]

Per step and rank (P parameters, fp32; E embedding width; B local batch;
N ranks; ring algorithms, as Open MPI uses for large messages):
  gradient all-reduce (or ZeRO-1's reduce-scatter + all-gather of weights):
      bytes  = 2 (N-1)/N · 4P             time = 2 (N-1) α + bytes / β
  feature all-gather (image + text, forward) and, with --gather-with-grad,
  its reduce-scatter (backward):
      bytes  = 2 · 2 (N-1)/N · 4 E B N    (small next to the gradients)
  compute: B · 3 · (GFLOP/img + GFLOP/text) / worker GFLOP/s
           (forward + backward ≈ 3 forwards; text at ~12 of 77 tokens run)
  efficiency = compute / (compute + communication), i.e. no overlap — the
  image tower's gradient all-reduce runs during the text backward, so real
  runs do somewhat better.
α, β: per-message latency and link bandwidth. Check against this machine:
bench/dist_bench.py measures 2 local ranks and the all-reduce bandwidth."""
import argparse

# From `vitamin info`: image + text parameters, GFLOP per image / per 77-token text.
MODELS = {
    "ViTamin-S": (22025152 + 40444032, 11.78, 3.38, 384),
    "ViTamin-B": (87525248 + 63428096, 45.25, 5.96, 512),
    "ViTamin-L": (333318048 + 123650304, 149.85, 13.30, 768),
    "ViTamin-XL-256": (436054080 + 488722176, 259.88, 66.96, 1152),
}
TEXT_FRACTION = 12 / 77  # the text tower runs only up to the last end-of-text token


def step_costs(model, n, local_batch, beta, alpha, gflops):
    params, gf_img, gf_txt, e = MODELS[model]
    grad_bytes = 2 * (n - 1) / n * 4 * params
    feat_bytes = 2 * 2 * (n - 1) / n * 4 * e * local_batch * n
    comm = 2 * (n - 1) * alpha + grad_bytes / beta + 4 * (n - 1) * alpha + feat_bytes / beta
    compute = local_batch * 3 * (gf_img + gf_txt * TEXT_FRACTION) / gflops
    return grad_bytes + feat_bytes, compute, comm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bandwidth-gbit", type=float, default=25.0, help="link bandwidth per worker, Gbit/s")
    ap.add_argument("--latency-us", type=float, default=20.0)
    ap.add_argument("--worker-gflops", type=float, default=300.0,
                    help="training GFLOP/s one worker sustains (a 2-core node here: see bench/train_bench.c)")
    ap.add_argument("--local-batch", type=int, default=64)
    a = ap.parse_args()
    beta, alpha = a.bandwidth_gbit * 1e9 / 8, a.latency_us * 1e-6
    print(f"Link {a.bandwidth_gbit:g} Gbit/s, latency {a.latency_us:g} us, worker {a.worker_gflops:g} GFLOP/s, "
          f"local batch {a.local_batch}\n")
    print("| model | params | MB sent per rank per step (N=8 / 64 / 512) | compute s/step | "
          "efficiency N=8 | N=64 | N=512 |")
    print("|---|---|---|---|---|---|---|")
    for model in MODELS:
        cells, effs, compute = [], [], 0.0
        for n in (8, 64, 512):
            b, compute, comm = step_costs(model, n, a.local_batch, beta, alpha, a.worker_gflops)
            cells.append(f"{b / 1e6:.0f}")
            effs.append(f"{100 * compute / (compute + comm):.1f}%")
        print(f"| {model} | {MODELS[model][0] / 1e6:.1f} M | {' / '.join(cells)} | {compute:.1f} | "
              f"{' | '.join(effs)} |")


if __name__ == "__main__":
    main()
