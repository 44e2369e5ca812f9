"""Dense training ops (train/ops.h: tmat_*, linear, conv3x3, attention) against
PyTorch autograd in float64 on the same float32 inputs.

Each case writes its inputs as .npy, runs tests/tools/train_ops_dense on 1 and
on 2 OpenMP threads, and checks
  - every output and gradient against the float64 reference, as an error
    relative to the largest reference magnitude of that tensor. The inputs are
    unit scale and every output is a dot product of <= ~10^4 fp32 terms
    summed in blocks, so round-off stays at ~1e-6 of the peak; the bound 1e-5
    leaves margin while a single missing or doubled term (>= ~1e-3 of the peak
    for these sizes) fails;
  - parameter gradients ACCUMULATE onto pre-filled dweight / dbias (ops.h);
  - the 1-thread and 2-thread results are bit-identical (ops.h determinism).
Sizes are odd on purpose (rows not multiples of 8/32/64, Cin=5, T=5 causal);
a few are large enough to reach the chunked paths (tmat_tn k-chunks and
split-k, conv bands that cross image boundaries)."""
import os
import subprocess

import numpy as np
import pytest
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
REL_TOL = 1e-5


@pytest.fixture(scope="module")
def tool(build_dir):
    path = build_dir / "testtools" / "train_ops_dense"
    assert path.exists(), f"{path} missing: run make"
    return str(path)


def save(d, **arrays):
    for name, arr in arrays.items():
        np.save(d / f"{name}.npy", np.ascontiguousarray(arr, dtype=np.float32).ravel())


def run_both(tool, d, op, args, outputs):
    """Runs the op on 1 and 2 threads; returns the outputs, asserting they are bit-identical."""
    results = []
    for threads in (1, 2):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
        proc = subprocess.run([tool, op, str(d), *map(str, args)], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        results.append({name: np.load(d / f"{name}.npy").ravel() for name in outputs})
    for name in outputs:
        assert results[0][name].tobytes() == results[1][name].tobytes(), f"{name}: 1 vs 2 threads differ"
    return results[0]


def check(name, got, ref):
    ref = np.asarray(ref, dtype=np.float64).ravel()
    assert got.shape == ref.shape, f"{name}: shape {got.shape} vs {ref.shape}"
    assert np.all(np.isfinite(got)), f"{name}: non-finite (unwritten?) values"
    peak = max(np.abs(ref).max(), 1e-30)
    err = np.abs(got.astype(np.float64) - ref).max() / peak
    print(f"{name}: rel err {err:.2e} (peak {peak:.3g})")
    assert err <= REL_TOL, f"{name}: max error {err:.3g} of peak {peak:.3g} > {REL_TOL}"


def rand(g, *shape):
    return torch.randn(*shape, generator=g, dtype=torch.float32)


# ---------------------------------------------------------------- GEMM

GEMM_CASES = [
    # orient, m, n, k, pad (extra leading-dimension columns), accumulate
    ("nt", 37, 45, 29, 3, 0),
    ("nt", 70, 33, 300, 0, 1),
    ("nt", 70, 300, 260, 1, 1),    # B big enough to be packed in parallel
    ("nn", 37, 45, 29, 5, 1),
    ("nn", 9, 300, 260, 0, 0),
    ("tn", 37, 45, 29, 2, 0),
    ("tn", 45, 37, 300, 0, 1),
    # tmat_tn cuts k into 4096-row chunks (train_gemm.c):
    ("tn", 20, 27, 9000, 1, 1),     # small C (1 tile): chunks in parallel, split-k
    ("tn", 3, 5, 70000, 0, 1),      # split-k over 18 chunks: two waves of partials
    ("tn", 513, 520, 4200, 0, 0),   # 9 x 2 full-width tiles (>= 16): chunk after chunk
]


@pytest.mark.parametrize("orient,m,n,k,pad,acc", GEMM_CASES)
def test_gemm(tool, tmp_path, orient, m, n, k, pad, acc):
    g = torch.Generator().manual_seed(m * 1000 + n + k)
    a_rows, a_cols = (k, m) if orient == "tn" else (m, k)
    b_rows, b_cols = (n, k) if orient == "nt" else (k, n)
    lda, ldb, ldc = a_cols + pad, b_cols + pad, n + pad
    a = rand(g, a_rows, lda)
    b = rand(g, b_rows, ldb)
    c = rand(g, m, ldc)
    save(tmp_path, a=a, b=b, c=c)
    out = run_both(tool, tmp_path, "gemm", [orient, m, n, k, lda, ldb, ldc, acc], ["c_out"])["c_out"]
    A, B = a[:, :a_cols].double(), b[:, :b_cols].double()
    prod = {"nt": lambda: A @ B.T, "nn": lambda: A @ B, "tn": lambda: A.T @ B}[orient]()
    ref = c.double().clone()
    ref[:, :n] = prod + (ref[:, :n] if acc else 0)
    # padding columns of C beyond n must be left untouched
    got = out.reshape(m, ldc)
    assert np.array_equal(got[:, n:], c[:, n:].numpy()), "wrote past n columns"
    check(f"{orient} C", got[:, :n].ravel(), ref[:, :n].numpy())


# ---------------------------------------------------------------- Linear

@pytest.mark.parametrize("rows,fin,fout,bias,need_dx,need_dw", [
    (77, 45, 33, 1, 1, 1),
    (600, 20, 130, 1, 1, 1),   # dbias over several 256-row blocks and 64-column blocks
    (13, 8, 5, 0, 1, 1),       # no bias
    (29, 17, 11, 1, 0, 1),     # first layer: no dx
    (29, 17, 11, 1, 1, 0),     # frozen weight: no dweight
])
def test_linear(tool, tmp_path, rows, fin, fout, bias, need_dx, need_dw):
    g = torch.Generator().manual_seed(rows + fin + fout)
    x, w, b, dy = rand(g, rows, fin), rand(g, fout, fin), rand(g, fout), rand(g, rows, fout)
    dw0, db0 = rand(g, fout, fin), rand(g, fout)
    save(tmp_path, x=x, w=w, b=b, dy=dy, dw0=dw0, db0=db0)
    outputs = ["y"] + ["dx"] * need_dx + ["dw"] * need_dw + ["db"] * bias
    out = run_both(tool, tmp_path, "linear", [rows, fin, fout, bias, need_dx, need_dw], outputs)
    X, W, Bi = (t.double().requires_grad_() for t in (x, w, b))
    y = F.linear(X, W, Bi if bias else None)
    y.backward(dy.double())
    check("y", out["y"], y.detach())
    if need_dx:
        check("dx", out["dx"], X.grad)
    if need_dw:
        check("dw", out["dw"], dw0.double() + W.grad)
    if bias:
        check("db", out["db"], db0.double() + Bi.grad)


# ---------------------------------------------------------------- Conv 3x3

@pytest.mark.parametrize("batch,h,w,cin,cout,stride,bias,need_dx,need_dw", [
    (2, 7, 7, 5, 3, 1, 1, 1, 1),
    (2, 7, 7, 5, 3, 2, 1, 1, 1),
    (3, 9, 6, 4, 70, 2, 1, 1, 1),     # non-square, even width, Cout > 64
    (1, 8, 8, 3, 16, 2, 0, 0, 1),     # stem-like: no bias, no dx
    (2, 5, 6, 6, 4, 1, 1, 1, 0),      # no dweight
    # Several bands of output rows (conv3x3_train.c: CONV_BAND_FLOATS = 2^20
    # floats of im2col, i.e. 72 rows here), the second one starting in image 1:
    (2, 50, 50, 32, 8, 1, 1, 1, 1),
    # stride 2, 60-row bands over 3 images of 40 output rows: both cross images
    (3, 80, 80, 48, 6, 2, 1, 1, 1),
])
def test_conv3x3(tool, tmp_path, batch, h, w, cin, cout, stride, bias, need_dx, need_dw):
    g = torch.Generator().manual_seed(batch * h * w + cin * cout + stride)
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    x = rand(g, batch, h, w, cin)
    wt = rand(g, cout, cin, 3, 3) / 3.0
    b, dy = rand(g, cout), rand(g, batch, ho, wo, cout)
    dw0, db0 = rand(g, cout, cin, 3, 3), rand(g, cout)
    save(tmp_path, x=x, w=wt, b=b, dy=dy, dw0=dw0, db0=db0)
    outputs = ["y"] + ["dx"] * need_dx + ["dw"] * need_dw + ["db"] * bias
    out = run_both(tool, tmp_path, "conv", [batch, h, w, cin, cout, stride, bias, need_dx, need_dw], outputs)
    X = x.double().permute(0, 3, 1, 2).contiguous().requires_grad_()
    W, Bi = wt.double().requires_grad_(), b.double().requires_grad_()
    y = F.conv2d(X, W, Bi if bias else None, stride=stride, padding=1)
    y.backward(dy.double().permute(0, 3, 1, 2))
    check("y", out["y"], y.detach().permute(0, 2, 3, 1))
    if need_dx:
        check("dx", out["dx"], X.grad.permute(0, 2, 3, 1))
    if need_dw:
        check("dw", out["dw"], dw0.double() + W.grad)
    if bias:
        check("db", out["db"], db0.double() + Bi.grad)


# ---------------------------------------------------------------- Attention

@pytest.mark.parametrize("batch,t,width,heads,causal", [
    (2, 5, 12, 3, 1),
    (2, 13, 16, 2, 0),
    (1, 37, 128, 2, 0),   # head dim 64 as in ViTamin
    (2, 77, 64, 1, 1),    # text length, causal
])
def test_attention(tool, tmp_path, batch, t, width, heads, causal):
    g = torch.Generator().manual_seed(batch * t + width + heads)
    qkv, dout = rand(g, batch, t, 3 * width), rand(g, batch, t, width)
    save(tmp_path, qkv=qkv, dout=dout)
    out = run_both(tool, tmp_path, "attn", [batch, t, width, heads, causal], ["out", "probs", "dqkv"])
    hd = width // heads
    Q = qkv.double().requires_grad_()
    q, k, v = Q.view(batch, t, 3, heads, hd).permute(2, 0, 3, 1, 4).unbind(0)
    s = (q @ k.transpose(-1, -2)) * hd ** -0.5
    if causal:
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    p = s.softmax(-1)
    o = (p @ v).transpose(1, 2).reshape(batch, t, width)
    o.backward(dout.double())
    check("out", out["out"], o.detach())
    probs = out["probs"]
    assert np.abs(probs - p.detach().numpy().ravel()).max() <= 1e-6, "probs"
    if causal:  # masked entries exactly zero
        masked = np.triu(np.ones((t, t), bool), 1)
        assert np.all(probs.reshape(batch, heads, t, t)[:, :, masked] == 0.0)
    check("dqkv", out["dqkv"], Q.grad)
