#!/usr/bin/env python3
"""Independent high-precision reference for every loss kind of API.md's table.

Regenerate the fixture (from the repository root):

    python3 -m venv /tmp/losslab-ref && /tmp/losslab-ref/bin/pip install -r scripts/requirements-reference.txt
    /tmp/losslab-ref/bin/python3 scripts/reference.py > tests/fixtures/losses_reference.json

(or `python3 -m venv .venv && . .venv/bin/activate && pip install -r
scripts/requirements-reference.txt && python3 scripts/reference.py >
tests/fixtures/losses_reference.json`). `python3 scripts/reference.py --self-check`
compares the reference's gradients with its own values by 50-digit central differences
and lists where they differ (only kinks, clamps, floors, clips and the cosine norm clamp,
where API.md's gradient is by definition not the derivative). The output is deterministic: a seeded RNG draws
every input as a Python float (so it is exactly representable and written with repr),
and every expected number is computed with mpmath at 50 significant digits and then
rounded to the nearest f64 (through exact rationals, so subnormals round correctly).

Nothing here uses the Rust code or the numpy peer: each loss is written from API.md's
table and rules (and PyTorch's documented behaviour where API.md says "as torch").
The fixture is read by tests/it/losses_reference.rs.

Each case is one object:
    name, note?        identification (and why the case exists)
    kind, params, from_logits, reduction, weights?, predictions, targets
    want_gradient?     false: evaluate without a gradient (default true)
    loss               number (mean, sum) or the terms (none: number[] or number[][])
    loss_mag           same shape as loss: a first-order rounding-error bound of a plain
                       f64 evaluation, in units of the f64 unit roundoff (running error
                       analysis of the natural formula); the test allows 1e-15 * loss_mag
                       absolute on top of 1e-12 relative, which covers cancellation
    gradient           dL/d(predictions), shaped like predictions (null when not asked)
    gradient_mag       same, for the gradient
    count              number of terms
    guard              whether a numerical guard acted (API.md, "Numerical guards")
or, for inputs that must be rejected with 422:
    expect_error       the JSON pointer of the offending field ("/targets/1")
"""

from __future__ import annotations

import json
import math
import random
import sys
from fractions import Fraction

from mpmath import mp, mpf

mp.dps = 50

LOG_FLOOR = mpf(-100)
GRAD_FLOOR = mpf(1e-12)  # the f64 1e-12, exactly
POISSON_EPS = mpf(1e-8)  # torch's eps, the f64 1e-8 exactly
ROW_TOL = 1e-6


class RefError(Exception):
    """The input must be rejected (422) with this JSON pointer."""

    def __init__(self, field: str):
        super().__init__(field)
        self.field = field


# ---------------------------------------------------------------------------------
# E: an exact value with a running rounding-error bound (in units of the unit
# roundoff u) of computing it in f64 by the same formula. Inputs are exact (m = 0);
# each operation adds |result| (its own rounding) to the propagated bounds.


class E:
    __slots__ = ("v", "m")

    def __init__(self, v, m=0):
        self.v = v if isinstance(v, mpf) else mpf(v)
        self.m = m if isinstance(m, mpf) else mpf(m)

    def __add__(self, o):
        o = wrap(o)
        v = self.v + o.v
        return E(v, self.m + o.m + abs(v))

    __radd__ = __add__

    def __sub__(self, o):
        o = wrap(o)
        v = self.v - o.v
        return E(v, self.m + o.m + abs(v))

    def __rsub__(self, o):
        return wrap(o) - self

    def __mul__(self, o):
        o = wrap(o)
        v = self.v * o.v
        return E(v, self.m * abs(o.v) + abs(self.v) * o.m + abs(v))

    __rmul__ = __mul__

    def __truediv__(self, o):
        o = wrap(o)
        v = self.v / o.v
        return E(v, self.m / abs(o.v) + abs(v) * o.m / abs(o.v) + abs(v))

    def __rtruediv__(self, o):
        return wrap(o) / self

    def __neg__(self):
        return E(-self.v, self.m)

    def __abs__(self):
        return E(abs(self.v), self.m)


def wrap(x) -> E:
    return x if isinstance(x, E) else E(x)


def const(x) -> E:
    """A constant an f64 program would hold rounded (ln 2, 2π)."""
    x = mpf(x)
    return E(x, abs(x))


def ln(x: E) -> E:
    v = mp.log(x.v)
    return E(v, x.m / abs(x.v) + abs(v))


def log1p(x: E) -> E:
    v = mp.log1p(x.v)
    return E(v, x.m / abs(1 + x.v) + abs(v))


def exp(x: E) -> E:
    v = mp.exp(x.v)
    return E(v, abs(v) * (x.m + 1))


def sqrt(x: E) -> E:
    v = mp.sqrt(x.v)
    return E(v, (x.m / (2 * v) if v > 0 else 0) + abs(v))


def tanh(x: E) -> E:
    v = mp.tanh(x.v)
    return E(v, (1 - v * v) * x.m + abs(v))


def power(x: E, g) -> E:
    g = mpf(g)
    if g == 0:
        return E(1)
    v = x.v**g
    d = g * x.v ** (g - 1) if x.v != 0 else mpf(0)
    return E(v, abs(d) * x.m + abs(v))


def softplus(x: E) -> E:
    """ln(1 + e^x) (the stable f64 form x + ln1p(e^-x) for x > 0 holds |x| too)."""
    v = mp.log1p(mp.exp(x.v))
    s = 1 / (1 + mp.exp(-x.v))
    return E(v, s * x.m + abs(v) + (abs(x.v) if x.v > 0 else 0))


def sigmoid(x: E) -> E:
    v = 1 / (1 + mp.exp(-x.v))
    return E(v, v * (1 - v) * x.m + 2 * abs(v))


def esum(xs) -> E:
    """An accurate (compensated) sum: the propagated bounds plus one rounding."""
    xs = list(xs)
    v = mp.fsum([x.v for x in xs])
    return E(v, mp.fsum([x.m for x in xs]) + abs(v))


def sign(x: E) -> int:
    return (x.v > 0) - (x.v < 0)


def log_clamped(x: E):
    """max(ln x, -100) and whether the clamp acted (ln 0 = -inf is clamped too)."""
    if x.v <= 0:
        return E(LOG_FLOOR), True
    l = ln(x)
    if l.v < LOG_FLOOR:
        return E(LOG_FLOOR), True
    return l, False


def to_f64(x: mpf) -> float:
    """The nearest f64 to x (round half to even, subnormals included)."""
    if not mp.isfinite(x):
        raise ValueError(f"non-finite reference value {x}")
    if x == 0:
        return 0.0
    sgn, man, ex, _ = x._mpf_  # x = (-1)^sgn · man · 2^ex exactly
    q = Fraction(int(man)) * (Fraction(2) ** int(ex))
    return -float(q) if sgn else float(q)  # CPython's int / int true division is correctly rounded


def mag_f64(x: mpf) -> float:
    """Error bounds are only a scale: rounded up a little, never 0 for nonzero data."""
    return float(x) * (1 + 1e-9)


# ---------------------------------------------------------------------------------
# inputs: shapes and pointers


class Data:
    """predictions or targets as sent: flat [n] or rows; rows() views a flat as one row."""

    def __init__(self, raw):
        self.raw = raw
        self.matrix = isinstance(raw[0], list)
        self.rows_ = raw if self.matrix else [raw]

    @property
    def m(self):
        return len(self.rows_)

    @property
    def k(self):
        return len(self.rows_[0])

    def shape(self):
        return (len(self.raw), len(self.raw[0])) if self.matrix else (len(self.raw),)

    def elem_ptr(self, field, r, c):
        return f"/{field}/{r}/{c}" if self.matrix else f"/{field}/{c}"

    def row_ptr(self, field, r):
        return f"/{field}/{r}" if self.matrix else f"/{field}"


def check_unit(d: Data, field: str):
    for r, row in enumerate(d.rows_):
        for c, x in enumerate(row):
            if not (0.0 <= x <= 1.0):
                raise RefError(d.elem_ptr(field, r, c))


def check_rows_sum(d: Data, field: str):
    for r, row in enumerate(d.rows_):
        s = mp.fsum([mpf(x) for x in row])
        if abs(s - 1) > ROW_TOL:
            raise RefError(d.row_ptr(field, r))


# ---------------------------------------------------------------------------------
# params


class Params:
    def __init__(self, kind, raw: dict, allowed: dict):
        for name in raw:
            if name not in allowed:
                raise RefError(f"/params/{name}")
        self.raw = raw
        self.allowed = allowed

    def number(self, name, default=None):
        if name not in self.raw:
            return default
        x = self.raw[name]
        ok = self.allowed[name]
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not ok(x):
            raise RefError(f"/params/{name}")
        return float(x)

    def flag(self, name, default=False):
        if name not in self.raw:
            return default
        x = self.raw[name]
        if not isinstance(x, bool):
            raise RefError(f"/params/{name}")
        return x

    def number_or_list(self, name, default=None):
        if name not in self.raw:
            return default
        x = self.raw[name]
        ok = self.allowed[name]
        if isinstance(x, list):
            if not x:
                raise RefError(f"/params/{name}")
            for i, v in enumerate(x):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(v):
                    raise RefError(f"/params/{name}/{i}")
            return [float(v) for v in x]
        return self.number(name)


def gt(lo):
    return lambda x: math.isfinite(x) and x > lo


def ge(lo):
    return lambda x: math.isfinite(x) and x >= lo


def between(lo, hi, lo_incl, hi_incl):
    def ok(x):
        if not math.isfinite(x):
            return False
        return (x >= lo if lo_incl else x > lo) and (x <= hi if hi_incl else x < hi)

    return ok


ANY = lambda x: True  # noqa: E731
LOG_BASE = gt(1.0)
EPS_CLIP = between(0.0, 0.5, False, False)  # a clip to [eps, 1 - eps] needs eps < 1/2

ALLOWED = {
    "mse": {},
    "l2": {},
    "mae": {},
    "huber": {"delta": gt(0.0)},
    "smooth_l1": {"beta": ge(0.0)},
    "log_cosh": {},
    "msle": {},
    "mape": {"epsilon": gt(0.0)},
    "quantile": {"tau": between(0.0, 1.0, False, False)},
    "poisson": {"full": ANY},
    "bce": {"pos_weight": gt(0.0), "epsilon": EPS_CLIP, "log_base": LOG_BASE},
    "cross_entropy": {
        "label_smoothing": between(0.0, 1.0, True, True),
        "class_weights": ge(0.0),
        "epsilon": EPS_CLIP,
        "log_base": LOG_BASE,
    },
    "nll": {"class_weights": ge(0.0), "log_base": LOG_BASE},
    "kl_div": {"log_base": LOG_BASE},
    "js_div": {"log_base": LOG_BASE},
    "hinge": {},
    "squared_hinge": {},
    "focal": {
        "gamma": ge(0.0),
        "alpha": between(0.0, 1.0, True, True),
        "epsilon": EPS_CLIP,
        "log_base": LOG_BASE,
    },
    "cosine": {"epsilon": gt(0.0)},
}
LOGIT_KINDS = {"bce", "cross_entropy", "focal", "poisson"}
PER_ROW = {"cross_entropy", "nll", "kl_div", "js_div", "cosine"}


class Guard:
    def __init__(self):
        self.log_clamp = False
        self.grad_floor = False
        self.epsilon_clip = False

    def any(self):
        return self.log_clamp or self.grad_floor or self.epsilon_clip


def floored(den: E, guard: Guard) -> E:
    """max(den, 1e-12) (the gradient floor), noting when it acted."""
    if den.v < GRAD_FLOOR:
        guard.grad_floor = True
        return E(GRAD_FLOOR)
    return den


def clip(a: E, eps, guard: Guard):
    """Keras' clip to [eps, 1 - eps]; returns (clipped, moved)."""
    if eps is None:
        return a, False
    lo, hi = mpf(eps), 1 - mpf(eps)
    if a.v < lo:
        guard.epsilon_clip = True
        return E(lo), True
    if a.v > hi:
        guard.epsilon_clip = True
        return E(hi, abs(hi)), True
    return a, False


# ---------------------------------------------------------------------------------
# elementwise kinds: prepare(params, a, y, from_logits) -> f(a, y, col, guard) -> (term, grad)


def prep_mse(p, a, y, logits):
    return lambda a, y, c, g: ((a - y) * (a - y), 2 * (a - y))


def prep_l2(p, a, y, logits):
    return lambda a, y, c, g: (mpf(0.5) * ((a - y) * (a - y)), a - y)


def prep_mae(p, a, y, logits):
    def f(a, y, c, g):
        r = a - y
        return abs(r), E(sign(r))  # sign(0) = 0: the kink's gradient is 0 (torch)

    return f


def prep_huber(p, a, y, logits):
    delta = p.number("delta", 1.0)

    def f(a, y, c, g):
        r = a - y
        if abs(r.v) <= delta:
            return mpf(0.5) * (r * r), r
        return delta * (abs(r) - mpf(0.5) * delta), E(delta * sign(r))

    return f


def prep_smooth_l1(p, a, y, logits):
    beta = p.number("beta", 1.0)

    def f(a, y, c, g):
        r = a - y
        if beta == 0.0:  # smooth_l1 with beta = 0 is mae (torch)
            return abs(r), E(sign(r))
        if abs(r.v) < beta:
            return mpf(0.5) * (r * r) / beta, r / beta
        return abs(r) - mpf(0.5) * beta, E(sign(r))

    return f


def prep_log_cosh(p, a, y, logits):
    def f(a, y, c, g):
        r = a - y
        v = mp.log(mp.cosh(r.v))
        ar = abs(r.v)
        # the stable f64 form |r| + ln1p(e^{-2|r|}) - ln 2 sums three parts
        t = mp.log1p(mp.exp(-2 * ar))
        m = r.m + ar + t + mp.log(2) + abs(v)
        return E(v, m), tanh(r)

    return f


def prep_msle(p, a, y, logits):
    for r, row in enumerate(y.rows_):
        for c, v in enumerate(row):
            if not v > -1.0:
                raise RefError(y.elem_ptr("targets", r, c))
    for r, row in enumerate(a.rows_):
        for c, v in enumerate(row):
            if not v > -1.0:
                raise RefError(a.elem_ptr("predictions", r, c))

    def f(a, y, c, g):
        d = log1p(a) - log1p(y)
        return d * d, 2 * d / (1 + a)

    return f


def prep_mape(p, a, y, logits):
    eps = p.number("epsilon", 1e-7)

    def f(a, y, c, g):
        den = abs(y) if abs(y.v) > eps else E(eps)  # a floor, not a clip
        r = a - y
        return 100 * abs(r) / den, E(100 * sign(r)) / den

    return f


def prep_quantile(p, a, y, logits):
    tau = p.number("tau", 0.5)

    def f(a, y, c, g):
        u = y - a
        t1, t2 = tau * u, (mpf(tau) - 1) * u
        term = t1 if t1.v >= t2.v else t2
        if u.v > 0:
            grad = E(-tau)
        elif u.v < 0:
            grad = E(1 - mpf(tau), abs(1 - mpf(tau)))
        else:
            grad = E(0)  # the kink (torch)
        return term, grad

    return f


def prep_poisson(p, a, y, logits):
    full = p.flag("full", False)
    for r, row in enumerate(y.rows_):
        for c, v in enumerate(row):
            if not v >= 0.0:
                raise RefError(y.elem_ptr("targets", r, c))
    if not logits:
        for r, row in enumerate(a.rows_):
            for c, v in enumerate(row):
                if not v >= 0.0:
                    raise RefError(a.elem_ptr("predictions", r, c))
    else:
        for r, row in enumerate(a.rows_):
            for c, v in enumerate(row):
                if mp.exp(mpf(v)) > mpf(sys.float_info.max):
                    raise RefError(a.elem_ptr("predictions", r, c))

    def stirling(y: E) -> E:
        # torch: y log y - y + 1/2 log(2 pi y), where y > 1
        if y.v <= 1:
            return E(0)
        return y * ln(y) - y + mpf(0.5) * ln(const(2 * mp.pi) * y)

    def f(a, y, c, g):
        if logits:
            ez = exp(a)
            term, grad = ez - y * a, ez - y
        else:
            ae = a + POISSON_EPS
            term, grad = a - y * ln(ae), 1 - y / ae
        if full:
            term = term + stirling(y)
        return term, grad

    return f


def prep_bce(p, a, y, logits):
    check_unit(y, "targets")
    pw = p.number_or_list("pos_weight")
    if isinstance(pw, list) and len(pw) != a.k:
        raise RefError("/params/pos_weight")
    eps = p.number("epsilon")
    if not logits:
        check_unit(a, "predictions")

    def weight(c):
        if pw is None:
            return mpf(1)
        return mpf(pw[c]) if isinstance(pw, list) else mpf(pw)

    def f(a, y, c, g):
        w = weight(c)
        if logits:
            # -(pw y ln σ(z) + (1 - y) ln(1 - σ(z))) = pw y softplus(-z) + (1 - y) softplus(z)
            term = w * y * softplus(-a) + (1 - y) * softplus(a)
            s = sigmoid(a)
            grad = s * (1 - y + w * y) - w * y
            return term, grad
        ac, moved = clip(a, eps, g)
        la, c1 = log_clamped(ac)
        l1a, c2 = log_clamped(1 - ac)
        if (c1 and w * y.v != 0) or (c2 and 1 - y.v != 0):
            g.log_clamp = True
        term = -(w * y * la + (1 - y) * l1a)
        # torch's BCELoss backward: (a - y) / max(a (1 - a), 1e-12); with pos_weight the
        # numerator of d/da of the term is a (1 - y + pw y) - pw y
        num = ac * (1 - y + w * y) - w * y
        den = floored(ac * (1 - ac), g)
        grad = E(0) if moved else num / den
        return term, grad

    return f


def prep_hinge_labels(y: Data):
    seen_neg = seen_zero = False
    for r, row in enumerate(y.rows_):
        for c, v in enumerate(row):
            if v not in (-1.0, 0.0, 1.0):
                raise RefError(y.elem_ptr("targets", r, c))
            if v == -1.0:
                if seen_zero:
                    raise RefError(y.elem_ptr("targets", r, c))
                seen_neg = True
            if v == 0.0:
                if seen_neg:
                    raise RefError(y.elem_ptr("targets", r, c))
                seen_zero = True
    return seen_zero  # all-0/1 labels: 0 maps to -1


def prep_hinge(p, a, y, logits):
    zero_one = prep_hinge_labels(y)

    def f(a, y, c, g):
        t = -1 if (zero_one and y.v == 0) else int(y.v)
        m = 1 - t * a
        if m.v > 0:
            return m, E(-t)
        return E(0), E(0)  # at and beyond the margin (0 at the kink, torch)

    return f


def prep_squared_hinge(p, a, y, logits):
    zero_one = prep_hinge_labels(y)

    def f(a, y, c, g):
        t = -1 if (zero_one and y.v == 0) else int(y.v)
        m = 1 - t * a
        if m.v > 0:
            return m * m, -2 * t * m
        return E(0), E(0)

    return f


def prep_focal(p, a, y, logits):
    check_unit(y, "targets")
    gamma = p.number("gamma", 2.0)
    alpha = p.number("alpha")
    eps = p.number("epsilon")
    if not logits:
        check_unit(a, "predictions")

    def f(a, y, c, g):
        at = E(1) if alpha is None else alpha * y + (1 - mpf(alpha)) * (1 - y)
        if logits:
            s, sn = sigmoid(a), sigmoid(-a)  # σ(z), 1 - σ(z) without cancellation
            bce = y * softplus(-a) + (1 - y) * softplus(a)
            q = s * (1 - y) + sn * y  # 1 - p_t
            dq = s * sn * (1 - 2 * y)  # d(1 - p_t)/dz
            dbce = s - y
        else:
            ac, moved = clip(a, eps, g)
            la, c1 = log_clamped(ac)
            l1a, c2 = log_clamped(1 - ac)
            q = ac * (1 - y) + (1 - ac) * y
            coef = at.v * (q.v**gamma if gamma != 0 else 1)
            if coef != 0 and ((c1 and y.v != 0) or (c2 and 1 - y.v != 0)):
                g.log_clamp = True
            bce = -(y * la + (1 - y) * l1a)
            dq = 1 - 2 * y
            # d(-y ln a)/da = -y / max(a, 1e-12), and likewise for 1 - a (API.md)
            dbce = -y / floored(ac, g) + (1 - y) / floored(1 - ac, g)
            if moved:
                return at * bce * power(q, gamma), E(0)
        qg = power(q, gamma)
        term = at * bce * qg
        if gamma == 0:
            grad = at * dbce
        else:
            grad = at * (dbce * qg + gamma * bce * power(q, gamma - 1) * dq)
        return term, grad

    return f


ELEMENTWISE = {
    "mse": prep_mse,
    "l2": prep_l2,
    "mae": prep_mae,
    "huber": prep_huber,
    "smooth_l1": prep_smooth_l1,
    "log_cosh": prep_log_cosh,
    "msle": prep_msle,
    "mape": prep_mape,
    "quantile": prep_quantile,
    "poisson": prep_poisson,
    "bce": prep_bce,
    "hinge": prep_hinge,
    "squared_hinge": prep_squared_hinge,
    "focal": prep_focal,
}
LOG_BASE_KINDS = {"bce", "cross_entropy", "nll", "kl_div", "js_div", "focal"}


# ---------------------------------------------------------------------------------
# per-row kinds: (params, a: Data, y: Data | None, idx: list | None, logits, want_grad)
#   -> rows of (term, [grad], row_weight | None)


def class_weights(p, k):
    cw = p.number_or_list("class_weights")
    if cw is None:
        return None
    if not isinstance(cw, list) or len(cw) != k:
        raise RefError("/params/class_weights")
    return [mpf(w) for w in cw]


def dense_targets(y: Data, idx, m, k):
    if idx is not None:
        return [[E(1 if c == t else 0) for c in range(k)] for t in idx]
    return [[E(v) for v in row] for row in y.rows_]


def row_cross_entropy(p, a, y, idx, logits, want_grad, guard):
    k = a.k
    s = p.number("label_smoothing", 0.0)
    eps = p.number("epsilon")
    cw = class_weights(p, k)
    if idx is None:
        check_unit(y, "targets")
        check_rows_sum(y, "targets")
    if not logits:
        check_unit(a, "predictions")
        check_rows_sum(a, "predictions")
    ys = dense_targets(y, idx, a.m, k)
    out = []
    for r, row in enumerate(a.rows_):
        yr = ys[r]
        rw = None if cw is None else mp.fsum([cw[c] * yr[c].v for c in range(k)])
        # y' = (1 - s) y + s / K, then the class weights
        ysm = [(1 - mpf(s)) * yc + mpf(s) / k if s else yc for yc in yr]
        coef = [ysm[c] * cw[c] if cw is not None else ysm[c] for c in range(k)]
        zs = [E(v) for v in row]
        if logits:
            mx = max(row)
            sh = [z - mx for z in zs]
            lse = ln(esum([exp(x) for x in sh]))
            logp = [x - lse for x in sh]
            term = -esum([coef[c] * logp[c] for c in range(k)])
            ctot = esum(coef)
            grad = [exp(logp[c]) * ctot - coef[c] for c in range(k)]
        else:
            parts, grad = [], []
            for c in range(k):
                ac, moved = clip(zs[c], eps, guard)
                la, clamped = log_clamped(ac)
                if clamped and coef[c].v != 0:
                    guard.log_clamp = True
                parts.append(coef[c] * la)
                if want_grad:
                    gc = -coef[c] / floored(ac, guard)
                    grad.append(E(0) if moved else gc)
            term = -esum(parts)
        out.append((term, grad, rw))
    return out


def row_nll(p, a, y, idx, logits, want_grad, guard):
    k = a.k
    cw = class_weights(p, k)
    ys = dense_targets(y, idx, a.m, k)
    out = []
    for r, row in enumerate(a.rows_):
        yr = ys[r]
        w = [cw[c] if cw is not None else mpf(1) for c in range(k)]
        rw = None if cw is None else mp.fsum([w[c] * yr[c].v for c in range(k)])
        term = -esum([w[c] * yr[c] * E(row[c]) for c in range(k)])
        grad = [E(-(w[c] * yr[c].v)) for c in range(k)]
        out.append((term, grad, rw))
    return out


def check_distributions(a, y):
    check_unit(y, "targets")
    check_rows_sum(y, "targets")
    check_unit(a, "predictions")
    check_rows_sum(a, "predictions")


def row_kl_div(p, a, y, idx, logits, want_grad, guard):
    check_distributions(a, y)
    out = []
    for r, (qr, pr) in enumerate(zip(a.rows_, y.rows_)):
        parts, grad = [], []
        for c, (q, pp) in enumerate(zip(qr, pr)):
            P, Q = E(pp), E(q)
            if pp > 0 and q == 0:
                raise RefError(a.elem_ptr("predictions", r, c))  # infinite
            if pp > 0:
                parts.append(P * (ln(P) - ln(Q)))
                grad.append(-P / Q)
            else:
                grad.append(E(0))  # p = 0 contributes 0, whatever q
        out.append((esum(parts), grad, None))
    return out


def row_js_div(p, a, y, idx, logits, want_grad, guard):
    check_distributions(a, y)
    out = []
    for r, (qr, pr) in enumerate(zip(a.rows_, y.rows_)):
        parts, grad = [], []
        for c, (q, pp) in enumerate(zip(qr, pr)):
            P, Q = E(pp), E(q)
            M = mpf(0.5) * (P + Q)
            if pp > 0:
                parts.append(mpf(0.5) * (P * (ln(P) - ln(M))))
            if q > 0:
                parts.append(mpf(0.5) * (Q * (ln(Q) - ln(M))))
            if want_grad:
                # d/dq of ½ p ln(p/m) + ½ q ln(q/m), m = (p + q)/2, is ½ ln(q/m)
                if q > 0:
                    grad.append(mpf(0.5) * (ln(Q) - ln(M)))
                elif pp > 0:
                    raise RefError(a.elem_ptr("predictions", r, c))  # -inf
                else:
                    raise ValueError("js_div gradient at p = q = 0 is not specified")
        out.append((esum(parts), grad, None))
    return out


def row_cosine(p, a, y, idx, logits, want_grad, guard):
    eps = mpf(p.number("epsilon", 1e-8))
    out = []
    for ar, yr in zip(a.rows_, y.rows_):
        A = [E(v) for v in ar]
        Y = [E(v) for v in yr]
        na = sqrt(esum([x * x for x in A]))
        ny = sqrt(esum([x * x for x in Y]))
        n1 = na if na.v > eps else E(eps)
        n2 = ny if ny.v > eps else E(eps)
        # torch: Σ (a / max(‖a‖, eps)) (y / max(‖y‖, eps))
        dot = esum([(A[c] / n1) * (Y[c] / n2) for c in range(len(A))])
        term = 1 - dot
        # torch's autograd: the clamp is applied under no_grad, so the norm's own
        # derivative a/‖a‖ (0 at ‖a‖ = 0) still flows; d cos/da_i =
        #   y_i/(n1 n2) - cos/n1 · a_i/‖a‖
        grad = []
        for c in range(len(A)):
            gi = Y[c] / (n1 * n2)
            if na.v > 0:
                gi = gi - dot / n1 * (A[c] / na)
            grad.append(-gi)
        out.append((term, grad, None))
    return out


PER_ROW_FN = {
    "cross_entropy": row_cross_entropy,
    "nll": row_nll,
    "kl_div": row_kl_div,
    "js_div": row_js_div,
    "cosine": row_cosine,
}


# ---------------------------------------------------------------------------------
# evaluate: shapes, weights, terms, reduction


def index_targets(kind, a: Data, y: Data):
    """Class indices (one per row) when targets are not predictions-shaped."""
    if y.shape() == a.shape():
        return None
    if kind in ("cross_entropy", "nll") and not y.matrix and len(y.raw) == a.m:
        out = []
        for i, t in enumerate(y.raw):
            if not (float(t).is_integer() and 0 <= t < a.k):
                raise RefError(f"/targets/{i}")
            out.append(int(t))
        return out
    raise RefError("/targets")


def check_weights(w, n):
    if w is None:
        return None
    if len(w) != n:
        raise RefError("/weights")
    for i, x in enumerate(w):
        if not (math.isfinite(x) and x >= 0):
            raise RefError(f"/weights/{i}")
    if all(x == 0 for x in w):
        raise RefError("/weights")
    return [mpf(x) for x in w]


def evaluate(case, exact=False):
    kind = case["kind"]
    reduction = case.get("reduction", "mean")
    logits = case.get("from_logits", False)
    want_grad = case.get("want_gradient", True)
    if logits and kind not in LOGIT_KINDS:
        raise RefError("/from_logits")
    p = Params(kind, case.get("params", {}), ALLOWED[kind])
    a, y = Data(case["predictions"]), Data(case["targets"])
    scale = mpf(1)
    if kind in LOG_BASE_KINDS:
        base = p.number("log_base")
        if base is not None:
            scale = mp.log(mpf(base))
    guard = Guard()
    k = a.k
    if kind in ELEMENTWISE:
        if y.shape() != a.shape():
            raise RefError("/targets")
        per_elem = not a.matrix
        w = check_weights(case.get("weights"), a.k if per_elem else a.m)
        f = ELEMENTWISE[kind](p, a, y, logits)
        terms, grads, tw, gw = [], [], [], []
        for r, (ar, yr) in enumerate(zip(a.rows_, y.rows_)):
            for c, (av, yv) in enumerate(zip(ar, yr)):
                t, g = f(E(av), E(yv), c, guard)
                s = mpf(1) if w is None else (w[c] if per_elem else w[r])
                terms.append(t)
                grads.append(g)
                tw.append(s)
                gw.append(s)
        row_w = None
    else:
        idx = index_targets(kind, a, y)
        w = check_weights(case.get("weights"), a.m)
        rows = PER_ROW_FN[kind](p, a, y, idx, logits, want_grad, guard)
        terms, grads, tw, gw, row_w = [], [], [], [], []
        for r, (t, g, rw) in enumerate(rows):
            s = mpf(1) if w is None else w[r]
            terms.append(t)
            tw.append(s)
            row_w.append(rw)
            for x in g:
                grads.append(x)
                gw.append(s)
        if all(rw is None for rw in row_w):
            row_w = None
    if scale != 1:
        terms = [t / E(scale, scale) for t in terms]
        grads = [g / E(scale, scale) for g in grads]
    count = len(terms)
    weighted = [t * s if s != 1 else t for t, s in zip(terms, tw)]
    if reduction == "mean":
        if row_w is not None:
            denom = mp.fsum([rw * s for rw, s in zip(row_w, tw)])
            if not denom > 0:
                raise RefError("/params/class_weights")
        else:
            denom = mp.fsum(tw)
        D = E(denom, denom) if (row_w is not None or w is not None) else E(denom)
    else:
        D = E(1)
    if reduction == "none":
        loss_v = [to_f64(t.v) for t in weighted]
        loss_m = [mag_f64(t.m + abs(t.v)) for t in weighted]
        if kind in ELEMENTWISE and a.matrix:
            loss_v = [loss_v[i * k : (i + 1) * k] for i in range(a.m)]
            loss_m = [loss_m[i * k : (i + 1) * k] for i in range(a.m)]
    else:
        total = esum(weighted)
        # the brief's Σ|terms| floor is part of the bound
        extra = mp.fsum([abs(t.v) for t in weighted])
        L = total / D
        loss_v = to_f64(L.v)
        loss_m = mag_f64(L.m + extra / D.v)
    out = {"loss": loss_v, "loss_mag": loss_m, "count": count, "guard": guard.any()}
    exact_total = mp.fsum([t.v for t in weighted]) / D.v
    exact_grad = []
    if want_grad:
        gv, gm = [], []
        for g, s in zip(grads, gw):
            x = g * s if s != 1 else g
            if D.v != 1:
                x = x / D
            exact_grad.append(x.v)
            gv.append(to_f64(x.v))
            gm.append(mag_f64(x.m))
        if a.matrix:
            gv = [gv[i * k : (i + 1) * k] for i in range(a.m)]
            gm = [gm[i * k : (i + 1) * k] for i in range(a.m)]
        out["gradient"] = gv
        out["gradient_mag"] = gm
    else:
        out["gradient"] = None
        out["gradient_mag"] = None
    if exact:
        out["exact"] = (exact_total, exact_grad)
    return out


# ---------------------------------------------------------------------------------
# cases

rng = random.Random(20250601)


def U(lo, hi):
    return lo + (hi - lo) * rng.random()


def draw(shape, lo, hi):
    if len(shape) == 1:
        return [U(lo, hi) for _ in range(shape[0])]
    return [[U(lo, hi) for _ in range(shape[1])] for _ in range(shape[0])]


def fmap(x, f):
    if isinstance(x, list):
        return [fmap(v, f) for v in x]
    return f(x)


def rows_of(x):
    return x if isinstance(x[0], list) else [x]


def prob_rows(m, k, lo=0.05, hi=1.0, zeros=0):
    """Rows of floats summing to 1 within a few ulp (normalised in f64)."""
    out = []
    for _ in range(m):
        raw = [U(lo, hi) for _ in range(k)]
        for z in rng.sample(range(k), min(zeros, k - 1)):
            raw[z] = 0.0
        s = math.fsum(raw)
        out.append([v / s for v in raw])
    return out


def weights_for(kind, shape):
    """One weight per row (per element for a flat elementwise input; a flat per-row
    input is one row)."""
    n = 1 if (kind in PER_ROW and len(shape) == 1) else shape[0]
    w = [U(0.0, 3.0) for _ in range(n)]
    if n > 2:
        w[rng.randrange(n)] = 0.0  # a zero weight is allowed
    if n > 1:
        w[rng.randrange(n)] = 1.0
    return w


def shapes():
    return [(rng.randint(1, 7),), (rng.randint(2, 4), rng.randint(2, 5))]


def gen_elementwise(lo_a, hi_a, lo_y, hi_y):
    def g(shape, variant):
        return {}, False, draw(shape, lo_a, hi_a), draw(shape, lo_y, hi_y)

    return g


def with_zero_residual(a, y):
    """Set one element's prediction equal to its target (the kink r = 0)."""
    ra, ry = rows_of(a), rows_of(y)
    r = rng.randrange(len(ra))
    c = rng.randrange(len(ra[0]))
    ra[r][c] = ry[r][c]
    return a


def gen_mae(shape, variant):
    a, y = draw(shape, -4, 4), draw(shape, -4, 4)
    if variant % 2 == 0:
        with_zero_residual(a, y)
    return {}, False, a, y


def gen_huber(shape, variant):
    params = [{}, {"delta": 0.7}, {"delta": 2.5}][variant % 3]
    return params, False, draw(shape, -4, 4), draw(shape, -4, 4)


def gen_smooth_l1(shape, variant):
    params = [{}, {"beta": 0.4}, {"beta": 0.0}, {"beta": 2.0}][variant % 4]
    a, y = draw(shape, -4, 4), draw(shape, -4, 4)
    if variant % 2 == 0:
        with_zero_residual(a, y)
    return params, False, a, y


def gen_mape(shape, variant):
    params = [{}, {"epsilon": 1e-3}][variant % 2]
    y = fmap(draw(shape, 0.01, 5), lambda v: v if rng.random() < 0.5 else -v)
    a = draw(shape, -5, 5)
    if variant % 3 == 0:
        rows_of(y)[0][0] = 0.0  # the floor: 100 |a| / eps
    if variant % 3 == 1:
        with_zero_residual(a, y)
    return params, False, a, y


def gen_quantile(shape, variant):
    params = [{}, {"tau": 0.1}, {"tau": 0.85}][variant % 3]
    a, y = draw(shape, -4, 4), draw(shape, -4, 4)
    if variant % 2 == 1:
        with_zero_residual(a, y)
    return params, False, a, y


def gen_poisson(shape, variant):
    params, logits = [({}, False), ({"full": True}, False), ({}, True), ({"full": True}, True)][
        variant % 4
    ]
    y = fmap(draw(shape, 0, 6), lambda v: float(int(v)) if rng.random() < 0.4 else v)
    a = draw(shape, -3, 2.5) if logits else draw(shape, 0, 5)
    if not logits and variant % 3 == 0:
        rows_of(a)[0][0] = 0.0
    return params, logits, a, y


def gen_bce(shape, variant):
    cols = shape[-1]
    variants = [
        ({}, False),
        ({"pos_weight": 2.5}, False),
        ({"log_base": 2.0}, False),
        ({}, True),
        ({"pos_weight": [round(U(0.2, 4), 3) for _ in range(cols)]}, True),
        ({"pos_weight": [round(U(0.2, 4), 3) for _ in range(cols)], "log_base": 10.0}, False),
        ({"pos_weight": 0.3, "log_base": 2.0}, True),
    ]
    params, logits = variants[variant % len(variants)]
    y = draw(shape, 0, 1)
    if variant % 2 == 0:
        y = fmap(y, lambda v: 1.0 if v > 0.5 else 0.0)
    a = draw(shape, -6, 6) if logits else draw(shape, 0.005, 0.995)
    return params, logits, a, y


def gen_hinge(shape, variant):
    a = draw(shape, -2.5, 2.5)
    if variant % 2 == 0:
        y = fmap(draw(shape, 0, 1), lambda v: 1.0 if v > 0.5 else -1.0)
    else:
        y = fmap(draw(shape, 0, 1), lambda v: 1.0 if v > 0.5 else 0.0)
    ra, ry = rows_of(a), rows_of(y)
    t = ry[0][0] if ry[0][0] != 0 else -1.0
    ra[0][0] = t  # exactly at the margin: t a = 1
    return {}, False, a, y


def gen_focal(shape, variant):
    variants = [
        ({}, False),
        ({"gamma": 0.0}, False),
        ({"gamma": 1.5, "alpha": 0.25}, False),
        ({"alpha": 0.75, "log_base": 2.0}, False),
        ({}, True),
        ({"gamma": 3.0, "alpha": 0.4}, True),
        ({"gamma": 0.5, "alpha": 0.25}, True),
    ]
    params, logits = variants[variant % len(variants)]
    y = draw(shape, 0, 1)
    if variant % 2 == 0:
        y = fmap(y, lambda v: 1.0 if v > 0.5 else 0.0)
    a = draw(shape, -5, 5) if logits else draw(shape, 0.01, 0.99)
    return params, logits, a, y


def gen_cross_entropy(shape, variant):
    m, k = (1, shape[0]) if len(shape) == 1 else shape
    if k < 2:
        k = 2
    flat = len(shape) == 1
    cw = [round(U(0.2, 3), 4) for _ in range(k)]
    variants = [
        ({}, False, "dense"),
        ({}, False, "index"),
        ({"label_smoothing": 0.1}, False, "index"),
        ({"class_weights": cw}, False, "index"),
        ({"class_weights": cw}, False, "onehot"),
        ({}, True, "index"),
        ({"label_smoothing": 0.2, "class_weights": cw}, True, "dense"),
        ({"log_base": 10.0}, False, "dense"),
        ({"class_weights": cw, "log_base": 2.0}, True, "index"),
    ]
    params, logits, tk = variants[variant % len(variants)]
    a = [[U(-4, 4) for _ in range(k)] for _ in range(m)] if logits else prob_rows(m, k)
    idx = [rng.randrange(k) for _ in range(m)]
    if tk == "index":
        y = idx
    elif tk == "onehot":
        y = [[1.0 if c == t else 0.0 for c in range(k)] for t in idx]
    else:
        y = prob_rows(m, k, zeros=1)
    a = a[0] if flat else a
    if flat and tk != "index":
        y = y[0]
    return params, logits, a, y


def gen_nll(shape, variant):
    m, k = (1, shape[0]) if len(shape) == 1 else shape
    if k < 2:
        k = 2
    flat = len(shape) == 1
    cw = [round(U(0.2, 3), 4) for _ in range(k)]
    variants = [
        ({}, "index"),
        ({"class_weights": cw}, "index"),
        ({"log_base": 2.0}, "index"),
        ({}, "onehot"),
        ({"class_weights": cw, "log_base": 10.0}, "onehot"),
    ]
    params, tk = variants[variant % len(variants)]
    if variant % 2 == 0:  # log-probabilities of a distribution
        a = [[math.log(v) for v in row] for row in prob_rows(m, k)]
    else:  # any numbers: rows need not be normalised (as torch)
        a = [[U(-5, 0.5) for _ in range(k)] for _ in range(m)]
    idx = [rng.randrange(k) for _ in range(m)]
    y = idx if tk == "index" else [[1.0 if c == t else 0.0 for c in range(k)] for t in idx]
    a = a[0] if flat else a
    if flat and tk != "index":
        y = y[0]
    return params, False, a, y


def gen_divergence(shape, variant):
    m, k = (1, shape[0]) if len(shape) == 1 else shape
    if k < 2:
        k = 2
    params = [{}, {"log_base": 2.0}, {}][variant % 3]
    q = prob_rows(m, k)
    pp = prob_rows(m, k, zeros=1 if variant % 2 == 0 else 0)
    if len(shape) == 1:
        q, pp = q[0], pp[0]
    return params, False, q, pp


def gen_cosine(shape, variant):
    params = [{}, {"epsilon": 1e-6}][variant % 2]
    return params, False, draw(shape, -3, 3), draw(shape, -3, 3)


GEN = {
    "mse": gen_elementwise(-4, 4, -4, 4),
    "l2": gen_elementwise(-4, 4, -4, 4),
    "mae": gen_mae,
    "huber": gen_huber,
    "smooth_l1": gen_smooth_l1,
    "log_cosh": gen_elementwise(-6, 6, -6, 6),
    "msle": gen_elementwise(-0.95, 6, -0.95, 6),
    "mape": gen_mape,
    "quantile": gen_quantile,
    "poisson": gen_poisson,
    "bce": gen_bce,
    "cross_entropy": gen_cross_entropy,
    "nll": gen_nll,
    "kl_div": gen_divergence,
    "js_div": gen_divergence,
    "hinge": gen_hinge,
    "squared_hinge": gen_hinge,
    "focal": gen_focal,
    "cosine": gen_cosine,
}
KINDS = list(GEN)  # API.md's table order


def make(name, kind, predictions, targets, *, params=None, reduction="mean", weights=None,
         from_logits=False, want_gradient=True, note=None, expect_error=None):
    case = {"name": name}
    if note:
        case["note"] = note
    case.update({
        "kind": kind,
        "params": params or {},
        "from_logits": from_logits,
        "reduction": reduction,
    })
    if weights is not None:
        case["weights"] = weights
    case["predictions"] = predictions
    case["targets"] = targets
    if not want_gradient:
        case["want_gradient"] = False
    try:
        result = evaluate(case)
    except RefError as e:
        if expect_error is None:
            raise AssertionError(f"{name}: unexpected reference error at {e.field}") from e
        if e.field != expect_error:
            raise AssertionError(f"{name}: reference says {e.field}, case says {expect_error}")
        case["expect_error"] = expect_error
        return case
    if expect_error is not None:
        raise AssertionError(f"{name}: expected an error at {expect_error}, reference accepted")
    case.update(result)
    return case


def grid_cases():
    """Every kind × reduction, flat and matrix, with and without weights."""
    cases = []
    for kind in KINDS:
        variant = 0
        for red in ("mean", "sum", "none"):
            flat_shape, mat_shape = shapes()
            # (shape, weighted): every reduction sees flat and matrix, weighted and not
            combos = [(flat_shape, False), (mat_shape, True)]
            combos.append((mat_shape, False) if red != "sum" else (flat_shape, True))
            for shape, weighted in combos:
                params, logits, a, y = GEN[kind](shape, variant)
                w = weights_for(kind, (len(a), len(a[0])) if isinstance(a[0], list) else (len(a),)) \
                    if weighted else None
                dims = "x".join(map(str, (len(a), len(a[0])) if isinstance(a[0], list) else (len(a),)))
                name = f"{kind}/{red}/{dims}{'/weighted' if weighted else ''}/v{variant}"
                cases.append(make(name, kind, a, y, params=params, reduction=red, weights=w,
                                  from_logits=logits))
                variant += 1
    return cases


def special_cases():
    c = []
    M = make
    # --- from_logits at |z| = 800: stable forms, exact
    c.append(M("bce/logits-800", "bce", [800.0, -800.0, 800.0, -800.0, 0.0], [1.0, 0.0, 0.0, 1.0, 0.25],
               from_logits=True, reduction="none",
               note="softplus(800) = 800 exactly; no clamp at 100"))
    c.append(M("bce/logits-800/pos_weight", "bce", [[800.0, -800.0], [-800.0, 800.0]],
               [[0.0, 1.0], [0.5, 0.5]], from_logits=True, params={"pos_weight": [2.0, 0.5]}))
    c.append(M("cross_entropy/logits-800/index", "cross_entropy",
               [[800.0, -800.0, 0.0], [-800.0, 800.0, 0.0], [0.0, 0.0, 800.0]], [1, 1, 0],
               from_logits=True, reduction="none"))
    c.append(M("cross_entropy/logits-800/dense", "cross_entropy",
               [[800.0, -800.0, 0.0], [-800.0, 800.0, 0.0]], [[0.25, 0.5, 0.25], [0.0, 1.0, 0.0]],
               from_logits=True, params={"label_smoothing": 0.3}))
    c.append(M("focal/logits-800", "focal", [800.0, -800.0, 800.0, -800.0], [1.0, 0.0, 0.0, 1.0],
               from_logits=True, reduction="none", params={"alpha": 0.25}))
    c.append(M("focal/logits-800/sum", "focal", [[800.0, -800.0], [3.0, -2.0]], [[0.0, 1.0], [1.0, 0.0]],
               from_logits=True, reduction="sum", params={"gamma": 1.0}))
    c.append(M("poisson/logits-800", "poisson", [-800.0, 0.5, -1.0], [3.0, 0.0, 2.0], from_logits=True,
               reduction="none", params={"full": True}, note="exp(-800) underflows to 0 harmlessly"))
    # --- bce guards
    c.append(M("bce/guard/clamp-and-floor", "bce", [0.0, 1.0, 0.5], [1.0, 0.0, 0.5], reduction="none",
               note="ln 0 clamped at -100 with coefficient 1; gradient (a - y)/1e-12"))
    c.append(M("bce/guard/floor-only-zero-coefficient", "bce", [0.0, 1.0], [0.0, 1.0], reduction="sum",
               note="the -100 clamps hit zero coefficients (no clamp guard) but a(1 - a) = 0 < 1e-12: "
                    "the floor acted (literal reading of API.md); gradient 0/1e-12 = 0"))
    c.append(M("bce/guard/clamp-tiny", "bce", [1e-50, 0.3], [0.5, 0.3], reduction="mean",
               note="ln(1e-50) = -115 < -100: clamped; a(1-a) = 1e-50: floored"))
    c.append(M("bce/guard/floor-only", "bce", [1e-13], [1.0], reduction="sum",
               note="ln(1e-13) = -29.9 (no clamp); a(1 - a) < 1e-12: the floor acts"))
    c.append(M("bce/no-guard/small", "bce", [1e-11, 0.999], [0.0, 1.0], reduction="sum",
               note="a(1 - a) = 1e-11 > 1e-12: no guard"))
    c.append(M("bce/guard/epsilon-clip", "bce", [0.0, 1e-4, 0.5, 0.9999, 1.0], [0.0, 1.0, 1.0, 0.0, 1.0],
               params={"epsilon": 1e-3}, reduction="none",
               note="Keras clip: values moved get gradient 0"))
    c.append(M("bce/no-guard/epsilon-inside", "bce", [[0.2, 0.7], [0.01, 0.99]], [[0.0, 1.0], [1.0, 0.0]],
               params={"epsilon": 1e-3}, reduction="mean", weights=[2.0, 0.5]))
    c.append(M("bce/guard/pos_weight-clamp", "bce", [0.0, 0.25], [1.0, 0.0], params={"pos_weight": 3.0},
               reduction="none"))
    # --- cross_entropy guards
    c.append(M("cross_entropy/guard/clamp", "cross_entropy", [[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]], [0, 2],
               reduction="none", note="ln a_t = ln 0 clamped at -100; gradient -1/1e-12"))
    c.append(M("cross_entropy/guard/zero-coefficient", "cross_entropy", [[0.0, 1.0]], [1], reduction="sum",
               note="ln 0 hits a zero coefficient (no clamp guard); a_0 = 0 < 1e-12: the floor acted "
                    "(literal reading, as for bce); loss 0, gradient [0, -1]"))
    c.append(M("cross_entropy/guard/smoothing-clamp", "cross_entropy", [[0.0, 1.0]], [1],
               params={"label_smoothing": 0.1}, reduction="sum",
               note="smoothing gives class 0 a non-zero coefficient: the clamp counts"))
    c.append(M("cross_entropy/guard/epsilon-clip", "cross_entropy", [[0.0005, 0.9995, 0.0], [0.2, 0.3, 0.5]],
               [[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]], params={"epsilon": 0.001}, reduction="none"))
    c.append(M("cross_entropy/no-guard/epsilon-inside", "cross_entropy", [[0.25, 0.75], [0.5, 0.5]], [1, 0],
               params={"epsilon": 0.001, "class_weights": [2.0, 0.5]}, reduction="mean", weights=[1.5, 0.0]))
    c.append(M("cross_entropy/flat-index", "cross_entropy", [0.1, 0.6, 0.3], [1], reduction="none"))
    c.append(M("cross_entropy/flat-index/weights", "cross_entropy", [0.1, 0.6, 0.3], [2], reduction="mean",
               weights=[2.5], params={"class_weights": [1.0, 2.0, 3.0]}))
    c.append(M("cross_entropy/index-equals-onehot/index", "cross_entropy",
               [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]], [2, 0, 1],
               params={"class_weights": [0.5, 2.0, 1.5], "label_smoothing": 0.15}, weights=[1.0, 3.0, 0.5],
               note="must equal the one-hot case below"))
    c.append(M("cross_entropy/index-equals-onehot/onehot", "cross_entropy",
               [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]],
               [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
               params={"class_weights": [0.5, 2.0, 1.5], "label_smoothing": 0.15}, weights=[1.0, 3.0, 0.5]))
    c.append(M("cross_entropy/soft-class-weights", "cross_entropy", [[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]],
               [[0.5, 0.25, 0.25], [0.0, 0.75, 0.25]], params={"class_weights": [0.5, 2.0, 1.5]},
               note="mean divides by Σ r_i, r_i = Σ_k w_k y_ik (not by m as torch)"))
    # --- nll
    c.append(M("nll/flat-index", "nll", [-1.2, -0.4, -2.5], [1], reduction="none"))
    c.append(M("nll/flat-index/class-weights", "nll", [-1.2, -0.4, -2.5], [2], reduction="mean",
               params={"class_weights": [1.0, 2.0, 3.0]}, note="mean divides by w_t: the term itself"))
    # --- kl / js zeros
    c.append(M("kl_div/zeros", "kl_div", [[0.5, 0.5, 0.0], [0.25, 0.25, 0.5]], [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]],
               reduction="none", note="p = 0 contributes 0 (and gradient 0) even where q = 0"))
    c.append(M("kl_div/flat/log_base", "kl_div", [0.1, 0.2, 0.7], [0.3, 0.3, 0.4], params={"log_base": 2.0},
               reduction="sum", weights=[0.5]))
    c.append(M("js_div/zeros/p", "js_div", [[0.5, 0.5, 0.0], [0.25, 0.25, 0.5]], [[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]],
               reduction="none", want_gradient=False,
               note="p = q = 0 in row 0, column 2; no gradient asked"))
    c.append(M("js_div/zeros/p-gradient", "js_div", [[0.5, 0.5], [0.25, 0.75]], [[1.0, 0.0], [0.0, 1.0]],
               reduction="sum", note="p = 0 < q: the gradient there is ½ ln 2"))
    c.append(M("js_div/zeros/q-no-gradient", "js_div", [[1.0, 0.0], [0.3, 0.7]], [[0.5, 0.5], [0.3, 0.7]],
               reduction="mean", want_gradient=False,
               note="q = 0 < p: finite value; only the gradient is infinite"))
    c.append(M("js_div/identical", "js_div", [0.2, 0.3, 0.5], [0.2, 0.3, 0.5], reduction="mean"))
    # --- poisson
    c.append(M("poisson/zeros-and-stirling", "poisson", [0.0, 0.0, 2.0, 1.5, 0.75, 4.0],
               [0.0, 3.0, 0.0, 1.0, 0.5, 7.0], params={"full": True}, reduction="none",
               note="Stirling term only where y > 1; a = 0 uses ln(1e-8)"))
    # --- kinks and special values
    c.append(M("smooth_l1/beta0-kink", "smooth_l1", [1.0, 2.0, -0.5], [1.0, 1.5, 0.5], params={"beta": 0.0},
               reduction="none", note="beta = 0 is mae; gradient 0 at r = 0"))
    c.append(M("mae/kink", "mae", [[1.0, 2.0], [3.0, 3.0]], [[1.0, 1.0], [3.0, 4.0]], reduction="mean"))
    c.append(M("quantile/kink", "quantile", [0.5, 1.0, 2.0], [0.5, 2.0, 1.0], params={"tau": 0.3},
               reduction="none"))
    c.append(M("huber/boundary", "huber", [1.0, 3.5, -2.0], [0.0, 1.0, 0.5], params={"delta": 2.5},
               reduction="none", note="|r| = delta is the quadratic side"))
    c.append(M("smooth_l1/boundary", "smooth_l1", [1.0, 1.5], [0.0, 0.0], params={"beta": 1.0},
               reduction="none", note="|r| = beta is the linear side"))
    c.append(M("mape/floor", "mape", [0.5, 1e-9, 2.0], [0.0, 0.0, 1e-8], reduction="none"))
    c.append(M("mape/floor-epsilon", "mape", [0.5, 2.0, -1.0], [0.0, 0.05, 0.2], params={"epsilon": 0.1},
               reduction="sum"))
    c.append(M("log_cosh/large", "log_cosh", [400.0, -30.0, 1e-8, 0.0], [0.0, 10.0, 0.0, 0.0],
               reduction="none", note="ln cosh 400 = 400 - ln 2 without overflow"))
    c.append(M("msle/near-minus-one", "msle", [-0.999999, 3.0], [0.0, -0.5], reduction="none"))
    c.append(M("hinge/margin", "hinge", [1.0, -1.0, 0.5, 2.0], [1.0, -1.0, -1.0, -1.0], reduction="none",
               note="t a = 1: the kink, gradient 0"))
    c.append(M("hinge/zero-one", "hinge", [[0.3, -0.2], [1.5, -1.0]], [[1.0, 0.0], [0.0, 0.0]],
               reduction="sum", note="0/1 labels: 0 maps to -1"))
    c.append(M("squared_hinge/zero-one", "squared_hinge", [0.3, -0.2, 1.5, -1.0], [1.0, 0.0, 0.0, 0.0],
               reduction="none"))
    c.append(M("hinge/all-ones", "hinge", [0.3, 2.0], [1.0, 1.0], reduction="mean"))
    c.append(M("focal/guard/clamp", "focal", [0.0, 0.5], [1.0, 0.0], reduction="none",
               note="BCE(0, 1) = 100 (clamped), gradient floor -1/1e-12"))
    c.append(M("focal/guard/floor-zero-coefficient", "focal", [0.0, 1.0, 0.5], [0.0, 1.0, 0.5],
               reduction="none",
               note="ln 0 hits zero coefficients (no clamp guard); a = 0 and 1 - a = 0 are floored at "
                    "1e-12 (literal reading, as bce); p_t = 1: loss 0, gradient 0"))
    c.append(M("focal/guard/epsilon-clip", "focal", [0.0001, 0.5, 0.99999], [1.0, 0.0, 1.0],
               params={"epsilon": 0.001, "gamma": 2.0}, reduction="none"))
    c.append(M("focal/gamma0-is-bce", "focal", [0.2, 0.7, 0.9], [0.0, 1.0, 0.5], params={"gamma": 0.0},
               reduction="mean"))
    c.append(M("bce/gamma0-is-focal", "bce", [0.2, 0.7, 0.9], [0.0, 1.0, 0.5], reduction="mean",
               note="equals focal/gamma0-is-bce"))
    # --- cosine norms
    c.append(M("cosine/flat", "cosine", [1.0, 2.0, 3.0], [3.0, -2.0, 1.5], reduction="none"))
    c.append(M("cosine/target-norm-clamped", "cosine", [[1.0, 2.0], [0.5, -0.5]], [[1e-9, 0.0], [2.0, 1.0]],
               reduction="none", note="‖y‖ = 1e-9 < eps = 1e-8: floored; cos = a·y/(‖a‖ eps)"))
    c.append(M("cosine/zero-prediction", "cosine", [[0.0, 0.0], [0.5, -0.5]], [[1.0, 2.0], [2.0, 1.0]],
               reduction="sum", note="‖a‖ = 0: cos = 0, gradient -y/(eps ‖y‖) (torch)"))
    c.append(M("cosine/prediction-norm-clamped", "cosine", [[3e-4, 4e-4], [1.0, 1.0]], [[1.0, 2.0], [1.0, -1.0]],
               params={"epsilon": 1e-3}, reduction="none",
               note="‖a‖ = 5e-4 < eps: value a·y/(eps ‖y‖); gradient as torch's autograd (the clamp is "
                    "done under no_grad, so -(y/(eps‖y‖) - cos/eps · a/‖a‖)), not the derivative of the "
                    "clamped expression -y/(eps‖y‖)"))
    # --- a larger case (accurate sums)
    a = [[U(-3, 3) for _ in range(6)] for _ in range(40)]
    y = [[U(-3, 3) for _ in range(6)] for _ in range(40)]
    c.append(M("mse/large", "mse", a, y, reduction="mean", weights=[U(0, 2) for _ in range(40)]))
    pa = prob_rows(40, 6)
    c.append(M("cross_entropy/large", "cross_entropy", pa, [rng.randrange(6) for _ in range(40)],
               reduction="mean", params={"class_weights": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]}))
    return c


def error_cases():
    E_ = []

    def err(name, kind, a, y, field, **kw):
        E_.append(make(name, kind, a, y, expect_error=field, **kw))

    err("hinge/mixed-labels", "hinge", [0.5, 0.2, -0.3], [1.0, -1.0, 0.0], "/targets/2")
    err("hinge/bad-label", "hinge", [0.5, 0.2, -0.3], [1.0, 0.5, -1.0], "/targets/1")
    err("squared_hinge/bad-label", "squared_hinge", [[0.5, 0.2], [0.1, 0.3]], [[1.0, -1.0], [2.0, 1.0]],
        "/targets/1/0")
    err("bce/target-out-of-range", "bce", [0.5, 0.2, 0.3], [1.0, 0.0, 1.5], "/targets/2")
    err("bce/prediction-out-of-range", "bce", [[0.5, 0.2], [0.1, -0.25]], [[1.0, 0.0], [0.0, 1.0]],
        "/predictions/1/1")
    err("focal/target-out-of-range", "focal", [0.5, 0.2], [-0.5, 1.0], "/targets/0")
    err("cross_entropy/index-out-of-range", "cross_entropy", [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], [0, 3],
        "/targets/1")
    err("cross_entropy/index-not-integer", "cross_entropy", [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], [0.5, 1],
        "/targets/0")
    err("cross_entropy/prediction-row-sum", "cross_entropy", [[0.2, 0.3, 0.5], [0.1, 0.1, 0.7]], [0, 1],
        "/predictions/1")
    err("cross_entropy/target-row-sum", "cross_entropy", [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]],
        [[0.5, 0.4, 0.0], [0.0, 0.0, 1.0]], "/targets/0")
    err("cross_entropy/class-weights-length", "cross_entropy", [[0.2, 0.3, 0.5]], [1], "/params/class_weights",
        params={"class_weights": [1.0, 2.0]})
    err("cross_entropy/class-weights-zero-mean", "cross_entropy", [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]], [0, 0],
        "/params/class_weights", params={"class_weights": [0.0, 1.0, 1.0]},
        note="Σ r_i = 0: the mean is undefined")
    err("cross_entropy/label-smoothing-range", "cross_entropy", [[0.2, 0.8]], [1], "/params/label_smoothing",
        params={"label_smoothing": 1.5})
    err("nll/index-negative", "nll", [[-0.2, -0.3], [-0.1, -0.1]], [-1, 1], "/targets/0")
    err("kl_div/q-zero", "kl_div", [[0.5, 0.5, 0.0], [0.2, 0.8, 0.0]], [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]],
        "/predictions/1/2")
    err("kl_div/q-zero-flat", "kl_div", [1.0, 0.0], [0.5, 0.5], "/predictions/1")
    err("kl_div/prediction-negative", "kl_div", [-0.1, 1.1], [0.5, 0.5], "/predictions/0")
    err("js_div/q-zero-gradient", "js_div", [[1.0, 0.0], [0.3, 0.7]], [[0.5, 0.5], [0.3, 0.7]],
        "/predictions/0/1", note="the gradient -∞ at q = 0 < p: 422 only when a gradient is asked")
    err("mse/weights-all-zero", "mse", [[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]], "/weights",
        weights=[0.0, 0.0])
    err("mse/weights-length", "mse", [[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]], "/weights",
        weights=[1.0, 2.0, 3.0, 4.0], note="a matrix takes one weight per row")
    err("mse/weights-negative", "mse", [1.0, 2.0, 3.0], [0.0, 0.0, 0.0], "/weights/1", weights=[1.0, -1.0, 1.0])
    err("cosine/weights-length-flat", "cosine", [1.0, 2.0], [2.0, 1.0], "/weights", weights=[1.0, 1.0],
        note="a flat input is one row for per-row kinds: one weight")
    err("huber/delta-zero", "huber", [1.0], [0.0], "/params/delta", params={"delta": 0.0})
    err("smooth_l1/beta-negative", "smooth_l1", [1.0], [0.0], "/params/beta", params={"beta": -1.0})
    err("quantile/tau-one", "quantile", [1.0], [0.0], "/params/tau", params={"tau": 1.0})
    err("mape/epsilon-zero", "mape", [1.0], [0.0], "/params/epsilon", params={"epsilon": 0.0})
    err("mse/unknown-param", "mse", [1.0], [0.0], "/params/delta", params={"delta": 1.0})
    err("focal/alpha-range", "focal", [0.5], [1.0], "/params/alpha", params={"alpha": 1.5})
    err("focal/gamma-negative", "focal", [0.5], [1.0], "/params/gamma", params={"gamma": -1.0})
    err("bce/pos-weight-zero", "bce", [0.5], [1.0], "/params/pos_weight", params={"pos_weight": 0.0})
    err("bce/pos-weight-list-element", "bce", [[0.5, 0.5]], [[1.0, 0.0]], "/params/pos_weight/1",
        params={"pos_weight": [1.0, -2.0]})
    err("kl_div/log-base-one", "kl_div", [0.5, 0.5], [0.5, 0.5], "/params/log_base", params={"log_base": 1.0})
    err("cosine/epsilon-zero", "cosine", [1.0, 0.0], [0.0, 1.0], "/params/epsilon", params={"epsilon": 0.0})
    err("msle/prediction-minus-one", "msle", [0.5, 0.2, -1.0], [0.0, 0.0, 0.0], "/predictions/2")
    err("msle/target-below-minus-one", "msle", [0.5, 0.2], [-1.5, 0.0], "/targets/0")
    err("poisson/prediction-negative", "poisson", [1.0, -0.5, 2.0], [1.0, 1.0, 1.0], "/predictions/1")
    err("poisson/target-negative", "poisson", [1.0, 0.5, 2.0], [1.0, 1.0, -1.0], "/targets/2")
    err("poisson/logits-overflow", "poisson", [0.0, 800.0], [1.0, 1.0], "/predictions/1", from_logits=True,
        note="exp(800) overflows f64: a 422 at that element")
    err("mse/from-logits", "mse", [1.0], [0.0], "/from_logits", from_logits=True)
    err("mse/shape-mismatch", "mse", [1.0, 2.0], [0.0, 0.0, 0.0], "/targets")
    return E_


def self_check(cases):
    """The reference's gradients against its own values: central differences at 50
    digits (step 1e-15·max(1, |x|)). Prints every element where they differ by more than
    1e-9 relative; expected only at kinks, clamps, floors, clips and the cosine norm
    clamp, where API.md's gradient is by definition not the derivative."""
    bad = 0
    for case in cases:
        if "expect_error" in case or case.get("want_gradient") is False:
            continue
        base = {k: v for k, v in case.items() if k in (
            "kind", "params", "from_logits", "reduction", "weights", "predictions", "targets")}
        _, grad = evaluate(base, exact=True)["exact"]
        flat = [x for row in rows_of(case["predictions"]) for x in row]
        k = len(rows_of(case["predictions"])[0])
        for i, x in enumerate(flat):
            h = mpf(10) ** -15 * max(1, abs(x))
            vals = []
            for sgn in (1, -1):
                moved = json.loads(json.dumps(case["predictions"]))
                rows = rows_of(moved)
                rows[i // k][i % k] = mpf(x) + sgn * h
                probe = dict(base, predictions=moved, want_gradient=False)
                try:
                    vals.append(evaluate(probe, exact=True)["exact"][0])
                except RefError as e:
                    vals.append(None)
            if None in vals:
                print(f"{case['name']}[{i}]: a step leaves the domain", file=sys.stderr)
                continue
            num = (vals[0] - vals[1]) / (2 * h)
            if abs(num - grad[i]) > mpf(1e-9) * max(abs(num), abs(grad[i]), mpf(1e-30)):
                bad += 1
                print(f"{case['name']}[{i}]: numeric {mp.nstr(num, 12)} vs gradient "
                      f"{mp.nstr(grad[i], 12)}", file=sys.stderr)
    print(f"self-check: {bad} elements differ", file=sys.stderr)


def main():
    cases = grid_cases() + special_cases() + error_cases()
    if "--self-check" in sys.argv:
        self_check(cases)
        return
    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    sys.stdout.write('{\n"about": "Generated by scripts/reference.py (mpmath, 50 digits); do not edit. '
                     'See that file for the fields and how to regenerate.",\n"cases": [\n')
    sys.stdout.write(",\n".join(json.dumps(c, allow_nan=False) for c in cases))
    sys.stdout.write("\n]\n}\n")


if __name__ == "__main__":
    main()
