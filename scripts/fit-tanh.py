#!/usr/bin/env python3
"""Fits the rational approximation behind `src/nn/tanh.rs`: the minimax
(least maximum relative error) `tanh(x) ~ x P(x^2) / Q(x^2)` on [0, CLAMP],
with P of degree 6 and Q of degree 3 in x^2 and P(0) = Q(0) = 1 (so that
tiny x give x exactly). Not part of the tests: the Rust tests check the
coefficients it printed over every float.

Method: the differential correction algorithm (Cheney and Loeb, "Two new
algorithms for rational approximation", Numer. Math. 3, 1961), one linear
program per step over a dense grid, in double precision; then each
coefficient rounded to single precision and the result evaluated as the
Rust code does (Horner steps fused multiply-adds, one division), to print
the worst error in units in the last place on a sample.

    python3 -m venv /tmp/fit && /tmp/fit/bin/pip install numpy scipy
    /tmp/fit/bin/python scripts/fit-tanh.py
"""

import sys

import numpy as np
from scipy.optimize import linprog

# Beyond ln(2^26 - 1) / 2 = 9.01091..., tanh rounds to 1 in single precision.
CLAMP = 9.010_913
DEG_P, DEG_Q = 6, 3
SCALE = CLAMP * CLAMP  # fit in t = x^2 / SCALE, in [0, 1], for conditioning


def grid():
    x = np.unique(np.concatenate([np.linspace(0.0, CLAMP, 6000), np.geomspace(1e-4, CLAMP, 3000)]))
    g = np.ones_like(x)
    g[x > 0] = np.tanh(x[x > 0]) / x[x > 0]
    # Weights: relative error in units of the result's last place.
    y = np.maximum(np.tanh(x), 2.0**-30).astype(np.float32)
    # (spacing / value, in [2^-24, 2^-23]) scaled by 2^23 into [0.5, 1].
    w = y.astype(np.float64) / np.spacing(y).astype(np.float64) / 2.0**23
    return x, (x * x) / SCALE, g, w


def powers(t, degree):
    return np.stack([t**j for j in range(1, degree + 1)], axis=1)


def fit():
    """Coefficients of P and Q in t (constant terms 1 left out), and the
    maximum relative error on the grid."""
    _, t, g, w = grid()
    tp, tq = powers(t, DEG_P), powers(t, DEG_Q)
    q_prev, delta = np.ones_like(t), np.inf
    for _ in range(60):
        # Variables: p_1..p_6, q_1..q_3, z. Minimise z subject to
        # +-(P - g Q) / g - delta Q <= z Q_prev (relative error, scaled).
        if not np.isfinite(delta):
            delta = 0.0
        rows, rhs = [], []
        for sign in (1.0, -1.0):
            a_p = sign * (w / g)[:, None] * tp
            a_q = -sign * w[:, None] * tq - delta * tq
            rows.append(np.hstack([a_p, a_q, -q_prev[:, None]]))
            rhs.append(-sign * w * (1.0 / g - 1.0) + delta)
        a = np.vstack(rows)
        b = np.concatenate(rhs)
        bounds = [(-1e3, 1e3)] * (DEG_P + DEG_Q) + [(None, None)]
        cost = np.zeros(DEG_P + DEG_Q + 1)
        cost[-1] = 1.0
        tight = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
        res = linprog(cost, A_ub=a, b_ub=b, bounds=bounds, method="highs", options=tight)
        if res.x is None:
            sys.exit(f"the linear program failed: {res.message}")
        p = np.concatenate([[1.0], res.x[:DEG_P]])
        q = np.concatenate([[1.0], res.x[DEG_P : DEG_P + DEG_Q]])
        qv = np.polyval(q[::-1], t)
        err = np.max(w * np.abs(np.polyval(p[::-1], t) / qv / g - 1.0))
        if abs(err - delta) < 1e-12:
            break
        q_prev, delta = qv, err
    return p, q, err


def to_f32_in_x(c):
    """Coefficients in t to coefficients in x^2, rounded to single precision."""
    return np.array([c[j] / SCALE**j for j in range(len(c))], dtype=np.float32)


def fma32(a, b, c):
    """Single-precision fused multiply-add, through double precision: the
    product of two floats is exact there; the sum may round twice (rare,
    and only for this printout)."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def tanh32(x, p, q, cap=True):
    """The Rust code's arithmetic, in single precision."""
    xc = np.minimum(np.abs(x), np.float32(CLAMP)).astype(np.float32)
    s = (xc * xc).astype(np.float32)
    num = np.full_like(s, p[-1])
    for c in p[-2::-1]:
        num = fma32(num, s, np.float32(c))
    den = np.full_like(s, q[-1])
    for c in q[-2::-1]:
        den = fma32(den, s, np.float32(c))
    y = ((xc * num).astype(np.float32) / den).astype(np.float32)
    return np.copysign(np.minimum(y, np.float32(1.0)) if cap else y, x)


def worst_ulp(p, q):
    x = np.geomspace(2.0**-20, 10.0, 2_000_000).astype(np.float32)
    y = tanh32(x, p, q)
    exact = np.tanh(x.astype(np.float64))
    ref = exact.astype(np.float32)
    ulp = np.spacing(np.abs(ref)).astype(np.float64)
    e = np.abs(y.astype(np.float64) - exact) / ulp
    i = int(np.argmax(e))
    return e[i], x[i]


def main():
    p, q, err = fit()
    p32, q32 = to_f32_in_x(p), to_f32_in_x(q)
    print(f"max error of the double-precision fit: {err * 2**23:.3f} ulp")
    # Shortest decimal of each single-precision value, highest degree first.
    print("P, highest degree first:", ", ".join(str(c) for c in p32[::-1]))
    print("Q, highest degree first:", ", ".join(str(c) for c in q32[::-1]))
    e, at = worst_ulp(p32, q32)
    print(f"worst on a 2e6-point sample of [2^-20, 10] in single precision: {e:.2f} ulp at {at!r}")
    at = np.array([CLAMP, np.inf], dtype=np.float32)
    print(f"at {CLAMP} and infinity: {tanh32(at, p32, q32)!r}, without the cap at 1: "
          f"{tanh32(at, p32, q32, cap=False)!r}")


if __name__ == "__main__":
    main()
