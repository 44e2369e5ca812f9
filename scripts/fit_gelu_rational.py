#!/usr/bin/env python3
"""Fit the rational erf behind the AVX-512 GELU (src/kernels/vecmath_avx512.h).

erf(u) ~= u * P(u^2) / Q(u^2) on 0 <= u <= 3.92 (beyond that erf(u) rounds to 1
in fp32), P of degree 6 and Q of degree 4 in u^2, fitted for the smallest
maximum absolute error: linearised least squares (P - f*Q with f = erf(u)/u,
reweighted by the previous Q) with Lawson weights that move the solution
towards minimax. The coefficients are then rewritten for GELU:

    0.5*x*erf(x/sqrt2) = x * xc * Pg(s) / Qg(s),  xc = clamp(x, +-3.92*sqrt2), s = xc^2

with Pg_i = P_i * 0.5 / sqrt2 / 2^i and Qg_i = Q_i / 2^i, and printed as C
literals. The last lines check the result evaluated in fp32 against math.erf.

Run: .venv/bin/python scripts/fit_gelu_rational.py   (numpy only; ~2 s)
"""
import math

import numpy as np
from numpy.polynomial import polynomial as poly

U_MAX = 3.92
P_TERMS, Q_TERMS = 7, 5


def fit():
    u = np.linspace(1e-3, U_MAX, 6000)
    t = u * u
    f = np.array([math.erf(v) / v for v in u])
    weights = np.ones_like(u)
    q_prev = np.ones_like(u)
    best = (math.inf, None, None)
    for _ in range(300):
        a = np.hstack([np.vander(t, P_TERMS, increasing=True),
                       -f[:, None] * np.vander(t, Q_TERMS, increasing=True)[:, 1:]])
        row_weight = np.sqrt(weights) * u / q_prev
        c, *_ = np.linalg.lstsq(a * row_weight[:, None], f * row_weight, rcond=None)
        p, q = c[:P_TERMS], np.concatenate([[1.0], c[P_TERMS:]])
        q_prev = poly.polyval(t, q)
        err = u * (poly.polyval(t, p) / q_prev - f)
        worst = np.abs(err).max()
        if worst < best[0]:
            best = (worst, p, q)
        weights = weights * np.abs(err) / worst
        weights /= weights.sum()
    return best


def horner32(coeffs, s):
    r = np.float32(coeffs[-1])
    for c in coeffs[-2::-1]:
        r = (r * s + np.float32(c)).astype(np.float32)
    return r


def main():
    worst64, p, q = fit()
    pg = [p[i] * 0.5 / math.sqrt(2) / 2 ** i for i in range(P_TERMS)]
    qg = [q[i] / 2 ** i for i in range(Q_TERMS)]
    limit = U_MAX * math.sqrt(2)
    print(f"limit (clamp of x): {limit:.9g}f")
    print("P (constant term first):", ", ".join(f"{v:.9e}f" for v in pg))
    print("Q (constant term first):", ", ".join(f"{v:.9e}f" for v in qg))
    x = np.linspace(-14, 14, 400001).astype(np.float32)
    xc = np.clip(x, -np.float32(limit), np.float32(limit))
    s = (xc * xc).astype(np.float32)
    pv = horner32([np.float32(v) for v in pg], s)
    qv = horner32([np.float32(v) for v in qg], s)
    gelu = (x * xc * pv / qv + np.float32(0.5) * x).astype(np.float32)
    ref = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    err = np.abs(gelu - ref) / np.maximum(1.0, np.abs(x))
    print(f"erf fit, float64: max |error| {worst64:.3g}; GELU in fp32: max |error|/max(1,|x|) {err.max():.3g}")


if __name__ == "__main__":
    main()
