"""Pointwise training ops (train/ops.h: LayerNorm, GELU, GeGLU, depthwise 3×3,
avg-pool backward, ClipLoss; train/optimizer.h: AdamW, cosine/const lr, global
gradient clipping) against PyTorch.

Each case writes float32 inputs as .npy, runs tests/tools/train_ops_pointwise
on 1 and on 2 OpenMP threads, and checks
  - the 1-thread and 2-thread results are bit-identical (ops.h determinism;
    the "big" cases are sized past every kernel's parallel threshold);
  - every output and gradient against PyTorch autograd in float64 on the same
    inputs, as an error relative to that tensor's largest reference magnitude.
    Inputs are unit scale; outputs are fp32 values or fp32 sums of <= ~10^4
    terms accumulated in double or in short fp32 blocks, so round-off is
    ~1e-6 of the peak. GELU's erf is Abramowitz–Stegun 7.1.26 (|error| <=
    1.5e-7). The bound 1e-5 leaves margin while a wrong border tap, divisor or
    missing term (>= ~1e-3 of the peak at these sizes) fails;
  - parameter gradients ACCUMULATE onto pre-filled dweight / dbias, and are
    left untouched when the op is called with NULL for them;
  - AdamW against torch.optim.AdamW itself (float32, decay and no-decay groups,
    open_clip's cosine_lr, clip_grad_norm_) over 10 steps.
Sizes are odd on purpose (H = W = 7, C = 5, rows not multiples of 8)."""
import math
import os
import subprocess

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from open_clip.loss import ClipLoss
from open_clip_train.scheduler import const_lr, cosine_lr

torch.set_num_threads(1)
REL_TOL = 1e-5


@pytest.fixture(scope="module")
def tool(build_dir):
    path = build_dir / "testtools" / "train_ops_pointwise"
    assert path.exists(), f"{path} missing: run make"
    return str(path)


def save(d, **arrays):
    for name, arr in arrays.items():
        arr = np.asarray(arr, dtype=np.float32)
        np.save(d / f"{name}.npy", arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(1, -1))


def run_both(tool, d, op, args, outputs):
    """Runs the op on 1 and 2 threads (fresh inputs each time: some modes write
    over them); returns the outputs, asserting they are bit-identical."""
    inputs = {p.name: p.read_bytes() for p in d.glob("*.npy") if not p.name.startswith("out_")}
    results = []
    for threads in (1, 2):
        for name, data in inputs.items():
            (d / name).write_bytes(data)
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
        proc = subprocess.run([tool, op, str(d), *map(str, args)], env=env, capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        results.append({name: np.load(d / f"out_{name}.npy") for name in outputs})
    for name in outputs:
        assert results[0][name].tobytes() == results[1][name].tobytes(), f"{name}: 1 vs 2 threads differ"
    return results[0]


def check(name, got, ref, tol=REL_TOL):
    ref = np.asarray(ref.detach() if isinstance(ref, torch.Tensor) else ref, dtype=np.float64).ravel()
    got = np.asarray(got).ravel()
    assert got.shape == ref.shape, f"{name}: shape {got.shape} vs {ref.shape}"
    assert np.all(np.isfinite(got)), f"{name}: non-finite (unwritten?) values"
    peak = max(np.abs(ref).max(), 1e-30)
    err = np.abs(got.astype(np.float64) - ref).max() / peak
    assert err <= tol, f"{name}: max error {err:.3g} of peak {peak:.3g} > {tol}"
    return err


def rand(g, *shape, scale=1.0):
    return torch.randn(*shape, generator=g, dtype=torch.float32) * scale


def f64(t, grad=True):
    return t.detach().double().requires_grad_(grad)


# ---------------------------------------------------------------- LayerNorm

@pytest.mark.parametrize("rows,dim,eps,mode", [
    (7, 5, 1e-6, "plain"),
    (33, 384, 1e-5, "alias"),
    (50, 64, 1e-6, "noparams"),
    (1000, 96, 1e-6, "plain"),     # 16 row blocks, parallel
])
def test_layernorm(tool, tmp_path, rows, dim, eps, mode):
    g = torch.Generator().manual_seed(rows * 7 + dim)
    # an offset mean and uneven scale, as real activations have
    x = rand(g, rows, dim) * 3 + 1.5
    w, b, dy = 1 + 0.5 * rand(g, dim), 0.5 * rand(g, dim), rand(g, rows, dim)
    dw0, db0 = rand(g, dim), rand(g, dim)
    save(tmp_path, x=x, weight=w, bias=b, dy=dy, dweight0=dw0, dbias0=db0)
    out = run_both(tool, tmp_path, "layernorm", [repr(eps), mode], ["y", "mean", "rstd", "dx", "dweight", "dbias"])

    xr, wr, br = f64(x), f64(w), f64(b)
    y = F.layer_norm(xr, (dim,), wr, br, eps)
    y.backward(dy.double())
    check("y", out["y"], y)
    check("mean", out["mean"], xr.mean(-1))
    check("rstd", out["rstd"], 1 / torch.sqrt(xr.var(-1, unbiased=False) + eps))
    check("dx", out["dx"], xr.grad)
    if mode == "noparams":
        assert out["dweight"].tobytes() == dw0.numpy().tobytes()
        assert out["dbias"].tobytes() == db0.numpy().tobytes()
    else:
        check("dweight", out["dweight"], dw0.double() + wr.grad)
        check("dbias", out["dbias"], db0.double() + br.grad)


# ---------------------------------------------------------------- GELU / GeGLU

@pytest.mark.parametrize("n,mode", [(1001, "plain"), (777, "alias"), (100_003, "plain")])
def test_gelu(tool, tmp_path, n, mode):
    g = torch.Generator().manual_seed(n)
    x = rand(g, n, scale=3.0)
    # the tails and the points where the kernel switches branch or clamps
    x[:12] = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 13.0, -13.0, 13.5, -13.5, 40.0, -40.0, 6.0, -6.0])
    dy = rand(g, n)
    save(tmp_path, x=x, dy=dy)
    out = run_both(tool, tmp_path, "gelu", [mode], ["y", "dx"])
    xr = f64(x)
    y = F.gelu(xr)
    y.backward(dy.double())
    check("y", out["y"], y)
    check("dx", out["dx"], xr.grad)


@pytest.mark.parametrize("rows,hidden", [(37, 129), (300, 200)])
def test_geglu(tool, tmp_path, rows, hidden):
    g = torch.Generator().manual_seed(rows + hidden)
    gate, lin, dy = rand(g, rows, hidden, scale=2.0), rand(g, rows, hidden), rand(g, rows, hidden)
    save(tmp_path, gate=gate, lin=lin, dy=dy)
    out = run_both(tool, tmp_path, "geglu", [], ["y", "dgate", "dlin"])
    gr, lr = f64(gate), f64(lin)
    y = F.gelu(gr) * lr
    y.backward(dy.double())
    check("y", out["y"], y)
    check("dgate", out["dgate"], gr.grad)
    check("dlin", out["dlin"], lr.grad)


@pytest.mark.parametrize("rows,hidden", [(37, 129), (300, 200)])
def test_swiglu(tool, tmp_path, rows, hidden):
    """The SwiGLU gate (SiLU), the MLP variant a custom-size model can select."""
    g = torch.Generator().manual_seed(rows * hidden)
    gate, lin, dy = rand(g, rows, hidden, scale=4.0), rand(g, rows, hidden), rand(g, rows, hidden)
    gate.view(-1)[:6] = torch.tensor([0.0, -0.0, 90.0, -90.0, 30.0, -30.0])  # sigmoid saturation both ways
    save(tmp_path, gate=gate, lin=lin, dy=dy)
    out = run_both(tool, tmp_path, "swiglu", [], ["y", "dgate", "dlin"])
    gr, lr = f64(gate), f64(lin)
    y = F.silu(gr) * lr
    y.backward(dy.double())
    check("y", out["y"], y)
    check("dgate", out["dgate"], gr.grad)
    check("dlin", out["dlin"], lr.grad)


# ---------------------------------------------------------------- depthwise 3×3, avg-pool

@pytest.mark.parametrize("b,h,w,c,stride,mode", [
    (2, 7, 7, 5, 1, "plain"),
    (2, 7, 7, 5, 2, "plain"),
    (1, 8, 6, 3, 2, "noparams"),
    (3, 6, 9, 17, 1, "plain"),
    (2, 30, 30, 40, 1, "plain"),   # parallel paths, many weight-gradient blocks
    (2, 30, 30, 40, 2, "plain"),
])
def test_depthwise(tool, tmp_path, b, h, w, c, stride, mode):
    g = torch.Generator().manual_seed(b * 1000 + h * 10 + c + stride)
    x = rand(g, b, h, w, c)
    weight, bias = rand(g, c, 1, 3, 3, scale=math.sqrt(2 / 9)), rand(g, c)
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    dy = rand(g, b, ho, wo, c)
    dw0, db0 = rand(g, c, 9), rand(g, c)
    save(tmp_path, x=x.reshape(-1, c), weight=weight.reshape(c, 9), bias=bias, dy=dy.reshape(-1, c),
         dweight0=dw0, dbias0=db0)
    out = run_both(tool, tmp_path, "depthwise", [b, h, w, c, stride, mode], ["y", "dx", "dweight", "dbias"])

    xr, wr, br = f64(x.permute(0, 3, 1, 2)), f64(weight), f64(bias)
    y = F.conv2d(xr, wr, br, stride=stride, padding=1, groups=c)
    y.backward(dy.double().permute(0, 3, 1, 2))
    check("y", out["y"], y.permute(0, 2, 3, 1))
    check("dx", out["dx"], xr.grad.permute(0, 2, 3, 1))
    if mode == "noparams":
        assert out["dweight"].tobytes() == dw0.numpy().tobytes()
        assert out["dbias"].tobytes() == db0.numpy().tobytes()
    else:
        check("dweight", out["dweight"], dw0.double() + wr.grad.reshape(c, 9))
        check("dbias", out["dbias"], db0.double() + br.grad)


@pytest.mark.parametrize("b,h,w,c", [(2, 7, 7, 5), (1, 8, 8, 3), (2, 5, 10, 4), (2, 30, 30, 40)])
def test_avgpool_backward(tool, tmp_path, b, h, w, c):
    g = torch.Generator().manual_seed(h * w + c)
    x = rand(g, b, h, w, c)
    ho, wo = (h - 1) // 2 + 1, (w - 1) // 2 + 1
    dy = rand(g, b, ho, wo, c)
    save(tmp_path, x=x.reshape(-1, c), dy=dy.reshape(-1, c))
    out = run_both(tool, tmp_path, "avgpool", [b, h, w, c], ["y", "dx"])
    xr = f64(x.permute(0, 3, 1, 2))
    y = F.avg_pool2d(xr, 3, 2, 1, count_include_pad=False)
    y.backward(dy.double().permute(0, 3, 1, 2))
    check("y", out["y"], y.permute(0, 2, 3, 1))
    check("dx", out["dx"], xr.grad.permute(0, 2, 3, 1))


# ---------------------------------------------------------------- ClipLoss

@pytest.mark.parametrize("n,e,logit_scale", [(8, 16, math.log(1 / 0.07)), (5, 7, 0.0), (64, 32, math.log(100))])
def test_clip_loss(tool, tmp_path, n, e, logit_scale):
    g = torch.Generator().manual_seed(n * e)
    # unnormalised tower outputs with different norms per row; text row 0 close
    # to image row 0 so that one pair is confidently matched
    image = rand(g, n, e) * (0.5 + torch.rand(n, 1, generator=g) * 3)
    text = rand(g, n, e) * (0.5 + torch.rand(n, 1, generator=g) * 3)
    text[0] = image[0] * 2 + 0.1 * rand(g, e)
    scale = torch.tensor([logit_scale], dtype=torch.float32)
    save(tmp_path, image=image, text=text, logit_scale=scale)
    out = run_both(tool, tmp_path, "clip", [], ["loss", "logits", "dimage", "dtext", "dlogit_scale"])

    ir, tr, sr = f64(image), f64(text), f64(scale[0])
    img_n, txt_n = F.normalize(ir, dim=-1), F.normalize(tr, dim=-1)
    loss = ClipLoss()(img_n, txt_n, sr.exp())
    loss.backward()
    check("loss", out["loss"], loss.reshape(1))
    check("logits", out["logits"], sr.exp() * img_n @ txt_n.T)
    check("dimage", out["dimage"], ir.grad)
    check("dtext", out["dtext"], tr.grad)
    check("dlogit_scale", out["dlogit_scale"], sr.grad.reshape(1))


# ---------------------------------------------------------------- AdamW, schedules, clipping

def test_lr_schedules(tool, tmp_path):
    base, warmup, total = 5e-4, 7, 40
    out = run_both(tool, tmp_path, "lr", [repr(base), warmup, total], ["cosine", "const"])

    class Opt:  # the schedulers only assign param_groups[i]["lr"]
        param_groups = [{}]

    cos, const = cosine_lr(Opt, base, warmup, total), const_lr(Opt, base, warmup, total)
    np.testing.assert_array_equal(out["cosine"].ravel(), np.float32([cos(s) for s in range(total + 1)]))
    np.testing.assert_array_equal(out["const"].ravel(), np.float32([const(s) for s in range(total + 1)]))


def test_adamw_matches_torch(tool, tmp_path):
    """10 steps, decay + no-decay groups, clipping active on some steps only."""
    n_decay, n_plain, steps = 50_000, 20_003, 10
    lr, warmup, betas, eps, wd = 1e-3, 3, (0.9, 0.98), 1e-6, 0.2
    g = torch.Generator().manual_seed(4)
    params0 = rand(g, n_decay + n_plain)
    # gradient norms ~ sqrt(n)·scale: around max_norm, so some steps clip and some do not
    scales = torch.tensor([1.0, 0.2, 3.0, 0.5, 1.5, 0.1, 2.0, 0.7, 0.05, 4.0])
    grads = rand(g, steps, n_decay + n_plain) * scales[:, None] * 0.01
    max_norm = 0.01 * math.sqrt(n_decay + n_plain)
    save(tmp_path, params=params0.reshape(1, -1), grads=grads)
    out = run_both(tool, tmp_path, "adamw",
                   [n_decay, repr(lr), warmup, steps, betas[0], betas[1], repr(eps), wd, repr(max_norm)],
                   ["params", "exp_avg", "exp_avg_sq", "norms", "lrs"])

    p_decay = torch.nn.Parameter(params0[:n_decay].clone())
    p_plain = torch.nn.Parameter(params0[n_decay:].clone())
    opt = torch.optim.AdamW([{"params": [p_decay], "weight_decay": wd}, {"params": [p_plain], "weight_decay": 0.0}],
                            lr=lr, betas=betas, eps=eps)
    scheduler = cosine_lr(opt, lr, warmup, steps)
    norms, lrs = [], []
    for s in range(steps):
        p_decay.grad, p_plain.grad = grads[s, :n_decay].clone(), grads[s, n_decay:].clone()
        norms.append(float(torch.nn.utils.clip_grad_norm_([p_decay, p_plain], max_norm)))
        lrs.append(scheduler(s))
        opt.step()
    clipped = [nrm > max_norm for nrm in norms]
    assert any(clipped) and not all(clipped), "the case should clip on some steps only"

    # Our norm is summed in double (correctly rounded here); torch's fp32 norm
    # is off by up to ~4 ulps (5e-7) on these steps.
    check("norms", out["norms"], norms, tol=1e-6)
    np.testing.assert_array_equal(out["lrs"].ravel(), np.float32(lrs))
    torch_params = torch.cat([p_decay.detach(), p_plain.detach()])
    state = [opt.state[p] for p in (p_decay, p_plain)]
    # With clipping off the moments agree bit for bit; with it, torch's norm
    # error scales the clipped gradients by up to ~5e-7 and their squares by
    # ~1e-6 (measured: 2e-7 and 6e-7 of the peak). A wrong clip coefficient
    # or β shows at >= 1e-5.
    check("exp_avg", out["exp_avg"], torch.cat([st["exp_avg"] for st in state]), tol=1e-6)
    check("exp_avg_sq", out["exp_avg_sq"], torch.cat([st["exp_avg_sq"] for st in state]), tol=2e-6)
    # Parameters (unit scale) to 1e-6 of the peak, measured 5e-8: missing
    # decay (lr·wd·p per step) or a wrong bias correction (~lr per step) moves
    # them by >= 1e-4. Their 10-step change (peak ~1e-2) is compared too, at
    # 1e-4: one fp32 ulp of a parameter near 4 is 2.4e-5 of that peak.
    check("params", out["params"], torch_params, tol=1e-6)
    check("param change", out["params"].ravel().astype(np.float64) - params0.double().numpy(),
          torch_params.double() - params0.double(), tol=1e-4)


def test_adamw_bit_exact_without_clipping(tool, tmp_path):
    """Without clipping, every AdamW operation is rounded as torch rounds it:
    the moments are bit-identical and the parameters differ only through
    torch's vector sqrt, which is off by one ulp on ~1% of inputs."""
    n_decay, n_plain, steps = 3000, 1001, 10
    lr, betas, eps, wd = 2e-3, (0.9, 0.95), 1e-6, 0.1
    g = torch.Generator().manual_seed(5)
    params0, grads = rand(g, n_decay + n_plain), rand(g, steps, n_decay + n_plain, scale=0.01)
    save(tmp_path, params=params0.reshape(1, -1), grads=grads)
    out = run_both(tool, tmp_path, "adamw", [n_decay, repr(lr), 0, steps, betas[0], betas[1], repr(eps), wd, 0],
                   ["params", "exp_avg", "exp_avg_sq"])
    p_decay = torch.nn.Parameter(params0[:n_decay].clone())
    p_plain = torch.nn.Parameter(params0[n_decay:].clone())
    opt = torch.optim.AdamW([{"params": [p_decay], "weight_decay": wd}, {"params": [p_plain], "weight_decay": 0.0}],
                            lr=lr, betas=betas, eps=eps)
    scheduler = cosine_lr(opt, lr, 0, steps)
    for s in range(steps):
        p_decay.grad, p_plain.grad = grads[s, :n_decay].clone(), grads[s, n_decay:].clone()
        scheduler(s)
        opt.step()
    state = [opt.state[p] for p in (p_decay, p_plain)]
    for name in ("exp_avg", "exp_avg_sq"):
        ref = torch.cat([st[name] for st in state]).numpy()
        assert out[name].ravel().tobytes() == ref.tobytes(), f"{name} differs from torch"
    ref = torch.cat([p_decay.detach(), p_plain.detach()]).numpy()
    # One ulp of the parameter (the final rounding may go the other way) plus
    # 1e-6 of the summed step sizes (updates shifted by torch's sqrt ulps;
    # measured 2e-9 beyond the ulp). A missing decay moves p by lr·wd·|p| per step.
    err = np.abs(out["params"].ravel().astype(np.float64) - ref)
    bound = np.spacing(np.abs(ref)) + steps * lr * 1e-6
    assert np.all(err <= bound), f"params: error {err.max():.3g}, {(err / bound).max():.3g} of the bound"
