#!/usr/bin/env python3
"""Independent reference for POST /train: writes tests/fixtures/train_reference.json.

Plain Python floats (IEEE-754 binary64), no numpy, no torch: a second, separate
implementation of API.md's training loop on one dense layer, z = X·W + b, a = act(z),
mean loss, and of torch.optim's update rules as torch 2.x applies them on the CPU
(single-tensor path, no weight decay, dampening 0):

    sgd        p = p - lr*g
    momentum   b = g (first step) else b*mu + g;           p = p - lr*b
    nesterov   b as momentum;                               p = p - lr*(g + mu*b)
    adagrad    s = s + g*g;                                 p = p - (lr*g)/(sqrt(s) + eps)
    rmsprop    v = v*alpha + ((1 - alpha)*g)*g;             p = p - (lr*g)/(sqrt(v) + eps)
    adam       m = lerp(m, g, 1 - beta1)  (torch's two-sided lerp)
               v = v*beta2 + ((1 - beta2)*g)*g
               p = p - ((lr/(1 - beta1**t))*m)/(sqrt(v)/sqrt(1 - beta2**t) + eps)

Sums are math.fsum (correctly rounded), so the Rust side (compensated sums) agrees to
a few ulp, and tests/it/train_reference.rs compares every trace row to 1e-12 relative.

Semantics reimplemented from API.md: state i = parameters after i updates, evaluated
on the whole training set before update i + 1; stop rules with strict < in the order
loss_below, abs_error_below, gradient_norm_below, then max_iterations; the trace holds
the states whose index is a multiple of trace_every plus the final one; one update per
mini-batch, in order, the last batch of an epoch smaller; with a seed each epoch is a
Fisher-Yates shuffle of 0..m-1 driven by SplitMix64 (j = (r * (i + 1)) >> 64); a
state that is not finite ends the run as "diverged" with the previous state final.

Regenerate (from the repository root):

    python3 scripts/train_reference.py            # writes tests/fixtures/train_reference.json
    cargo test --test it train_reference
"""

from __future__ import annotations

import json
import math
import os
import sys

MASK = (1 << 64) - 1


# ---------------------------------------------------------------------------
# SplitMix64 and the per-epoch shuffle


class SplitMix64:
    def __init__(self, seed: int):
        self.state = seed & MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)


def batch_stream(m: int, size: int, seed):
    rng = SplitMix64(seed) if seed is not None else None
    while True:
        order = list(range(m))
        if rng is not None:
            for i in range(m - 1, 0, -1):
                j = (rng.next() * (i + 1)) >> 64
                order[i], order[j] = order[j], order[i]
        for start in range(0, m, size):
            yield order[start:start + size]


# ---------------------------------------------------------------------------
# activations and losses (the pairs the fixture uses: identity / sigmoid / tanh with
# mse / l2, elementwise, mean over every element; sigmoid + bce and softmax +
# cross_entropy from the logits, as API.md's fused pairs)


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


ACT = {
    "identity": (lambda z: z, lambda z, a: 1.0),
    "sigmoid": (sigmoid, lambda z, a: a * (1.0 - a)),
    "tanh": (math.tanh, lambda z, a: 1.0 - a * a),
}

LOSS = {  # term, d term / da
    "mse": (lambda r: r * r, lambda r: 2.0 * r),
    "l2": (lambda r: 0.5 * r * r, lambda r: r),
}


def softplus(z: float) -> float:
    return z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))


def evaluate(X, Y, W, b, act, loss):
    """Mean loss, A and dL/dZ over the rows given; W is n x k (lists), b has k."""
    n, k = len(W), len(b)
    count = len(X) * k
    Z = [[math.fsum(x[j] * W[j][c] for j in range(n)) + b[c] for c in range(k)] for x in X]
    if loss == "bce":  # sigmoid + bce from the logits: (1 - y) z + softplus(-z), dL/dz = (a - y)/count
        assert act == "sigmoid"
        A = [[sigmoid(z) for z in row] for row in Z]
        terms = [(1.0 - y) * z + softplus(-z) for zr, yr in zip(Z, Y) for z, y in zip(zr, yr)]
        dZ = [[(a - y) / count for a, y in zip(ar, yr)] for ar, yr in zip(A, Y)]
        return math.fsum(terms) / count, A, dZ
    if loss == "cross_entropy":  # softmax + cross_entropy from the logits, per row
        assert act == "softmax"
        rows = len(X)
        A, dZ, terms = [], [], []
        for zr, yr in zip(Z, Y):
            top = max(zr)
            lse = top + math.log(math.fsum(math.exp(z - top) for z in zr))
            ar = [math.exp(z - lse) for z in zr]
            terms.append(math.fsum(y * (lse - z) for z, y in zip(zr, yr)))
            total = math.fsum(yr)
            A.append(ar)
            dZ.append([(a * total - y) / rows for a, y in zip(ar, yr)])
        return math.fsum(terms) / rows, A, dZ
    f, df = ACT[act]
    term, dterm = LOSS[loss]
    A = [[f(z) for z in row] for row in Z]
    terms, dZ = [], []
    for zr, ar, yr in zip(Z, A, Y):
        drow = []
        for z, a, y in zip(zr, ar, yr):
            r = a - y
            terms.append(term(r))
            drow.append(dterm(r) / count * df(z, a))
        dZ.append(drow)
    return math.fsum(terms) / count, A, dZ


def gradient(X, dZ, n, k):
    dW = [[math.fsum(x[j] * d[c] for x, d in zip(X, dZ)) for c in range(k)] for j in range(n)]
    db = [math.fsum(d[c] for d in dZ) for c in range(k)]
    return dW, db


# ---------------------------------------------------------------------------
# optimizers on a flat parameter list


def lerp(start, end, weight):
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1.0 - weight)


class Optimizer:
    def __init__(self, spec):
        if isinstance(spec, str):
            spec = {"kind": spec}
        self.kind = spec["kind"]
        defaults = {"momentum": 0.9, "nesterov": 0.9}
        self.mu = spec.get("momentum", defaults.get(self.kind, 0.0))
        self.eps = spec.get("epsilon", 1e-10 if self.kind == "adagrad" else 1e-8)
        self.alpha = spec.get("alpha", 0.99)
        self.beta1 = spec.get("beta1", 0.9)
        self.beta2 = spec.get("beta2", 0.999)
        self.t = 0
        self.s1 = None
        self.s2 = None

    def step(self, lr, p, g):
        if self.s1 is None:
            self.s1 = [0.0] * len(p)
            self.s2 = [0.0] * len(p)
        self.t += 1
        out = []
        for i, (pi, gi) in enumerate(zip(p, g)):
            if self.kind == "sgd":
                out.append(pi - lr * gi)
            elif self.kind in ("momentum", "nesterov"):
                self.s1[i] = gi if self.t == 1 else self.s1[i] * self.mu + gi
                d = gi + self.mu * self.s1[i] if self.kind == "nesterov" else self.s1[i]
                out.append(pi - lr * d)
            elif self.kind == "adagrad":
                self.s1[i] = self.s1[i] + gi * gi
                out.append(pi - (lr * gi) / (math.sqrt(self.s1[i]) + self.eps))
            elif self.kind == "rmsprop":
                self.s1[i] = self.s1[i] * self.alpha + ((1.0 - self.alpha) * gi) * gi
                out.append(pi - (lr * gi) / (math.sqrt(self.s1[i]) + self.eps))
            elif self.kind == "adam":
                self.s1[i] = lerp(self.s1[i], gi, 1.0 - self.beta1)
                self.s2[i] = self.s2[i] * self.beta2 + ((1.0 - self.beta2) * gi) * gi
                bc1 = 1.0 - self.beta1 ** self.t
                bc2_sqrt = math.sqrt(1.0 - self.beta2 ** self.t)
                denom = math.sqrt(self.s2[i]) / bc2_sqrt + self.eps
                out.append(pi - ((lr / bc1) * self.s1[i]) / denom)
            else:
                raise ValueError(self.kind)
        return out


# ---------------------------------------------------------------------------
# the loop


def finite(*values):
    return all(math.isfinite(v) for v in values)


def train(req):
    X = req["inputs"]
    X = [[x] for x in X] if not isinstance(X[0], list) else X
    Yraw = req["targets"]
    init = req.get("init", {})
    w0 = init.get("weights", 0.0)
    if req["loss"] == "cross_entropy" and not isinstance(Yraw[0], list):
        # class indices: k from init.weights [n][k], targets one-hot
        classes = len(w0[0])
        Yraw = [[1.0 if c == int(t) else 0.0 for c in range(classes)] for t in Yraw]
    flat = not isinstance(Yraw[0], list)
    Y = [[y] for y in Yraw] if flat else Yraw
    m, n, k = len(X), len(X[0]), len(Y[0])
    if isinstance(w0, (int, float)):
        W = [[float(w0)] * k for _ in range(n)]
    elif isinstance(w0[0], list):
        W = [list(r) for r in w0]
    else:
        W = [[w] for w in w0] if k == 1 else [list(w0)]
    b0 = init.get("bias", 0.0)
    b = [float(b0)] * k if isinstance(b0, (int, float)) else list(b0)
    use_bias = req.get("use_bias", True)
    act, loss = req.get("activation", "identity"), req["loss"]
    lr = req["learning_rate"]
    opt = Optimizer(req.get("optimizer", "sgd"))
    N = req["max_iterations"]
    every = req.get("trace_every", 1)
    stop = req.get("stop", {})
    bs = req.get("batch_size", m)
    batches = batch_stream(m, bs, req.get("seed")) if bs < m else None

    def pack(W, b):
        return [w for row in W for w in row] + b

    def unpack(theta):
        return [theta[j * k:(j + 1) * k] for j in range(n)], theta[n * k:]

    def out_w(W):
        return [row[0] for row in W] if flat else W

    def out_b(b):
        return b[0] if flat else b

    def row(i, value, W, b, dW, db):
        return {"iteration": i, "loss": value, "weights": out_w(W), "bias": out_b(b),
                "gradient_weights": out_w(dW), "gradient_bias": out_b(db)}

    trace = []
    trainable = n * k + (k if use_bias else 0)
    theta = pack(W, b)
    prev = None  # (i, loss, theta, dW, db) of the last finite state
    i = 0
    while True:
        W, b = unpack(theta)
        value, A, dZ = evaluate(X, Y, W, b, act, loss)
        dW, db = gradient(X, dZ, n, k)
        if not finite(value, *theta, *[g for r in dW for g in r], *db):
            assert prev is not None, "state 0 must be finite"
            pi, pl, ptheta, pdW, pdb = prev
            if every and pi % every:
                trace.append(row(pi, pl, *unpack(ptheta), pdW, pdb))
            reason, final_i, final_loss, final_theta = "diverged", pi, pl, ptheta
            break
        prev = (i, value, theta, dW, db)
        reason = None
        gnorm_terms = [g for r in dW for g in r] + (db if use_bias else [])
        if "loss_below" in stop and value < stop["loss_below"]:
            reason = "loss_below"
        elif "abs_error_below" in stop and max(
                abs(a - y) for ar, yr in zip(A, Y) for a, y in zip(ar, yr)) < stop["abs_error_below"]:
            reason = "abs_error_below"
        elif "gradient_norm_below" in stop and math.sqrt(
                math.fsum(g * g for g in gnorm_terms)) < stop["gradient_norm_below"]:
            reason = "gradient_norm_below"
        elif i >= N:
            reason = "max_iterations"
        if every and (i % every == 0 or reason):
            trace.append(row(i, value, W, b, dW, db))
        if reason:
            final_i, final_loss, final_theta = i, value, theta
            break
        if batches is not None:
            idx = next(batches)
            Xb, Yb = [X[r] for r in idx], [Y[r] for r in idx]
            _, _, dZb = evaluate(Xb, Yb, W, b, act, loss)
            gW, gb = gradient(Xb, dZb, n, k)
            g = pack(gW, gb)
        else:
            g = pack(dW, db)
        new = opt.step(lr, theta[:trainable], g[:trainable])
        theta = new + theta[trainable:]
        i += 1

    Wf, bf = unpack(final_theta)
    return {"iterations": final_i, "converged": reason not in ("max_iterations", "diverged"),
            "stop_reason": reason,
            "final": {"iteration": final_i, "weights": out_w(Wf), "bias": out_b(bf), "loss": final_loss},
            "trace": trace}


# ---------------------------------------------------------------------------
# the cases

X3 = [[0.5, -1.0], [1.5, 2.0], [-0.3, 0.8]]
IDENTITY_MSE = {"inputs": X3, "targets": [1.0, -0.5, 0.25], "activation": "identity", "loss": "mse",
                "init": {"weights": [0.1, -0.2], "bias": 0.05}}
SIGMOID_L2 = {"inputs": X3, "targets": [0.9, 0.1, 0.6], "activation": "sigmoid", "loss": "l2",
              "init": {"weights": [0.3, -0.1], "bias": -0.2}}
OPTIMIZERS = [
    ("sgd", "sgd", 0.1),
    ("momentum", {"kind": "momentum", "momentum": 0.9}, 0.05),
    ("nesterov", {"kind": "nesterov", "momentum": 0.8}, 0.05),
    ("adagrad", "adagrad", 0.3),
    ("rmsprop", {"kind": "rmsprop", "alpha": 0.9, "epsilon": 1e-8}, 0.01),
    ("adam", {"kind": "adam", "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}, 0.05),
]


def cases():
    out = []
    for pname, problem in (("identity_mse", IDENTITY_MSE), ("sigmoid_l2", SIGMOID_L2)):
        for oname, opt, lr in OPTIMIZERS:
            for use_bias in (True, False):
                req = dict(problem, optimizer=opt, learning_rate=lr, use_bias=use_bias,
                           max_iterations=12, trace_every=1)
                out.append((f"{pname}_{oname}_{'bias' if use_bias else 'no_bias'}", req))
    out.append(("identity_mse_minibatch_in_order_momentum",
                dict(IDENTITY_MSE, optimizer="momentum", learning_rate=0.05, batch_size=2,
                     max_iterations=10, trace_every=1)))
    out.append(("sigmoid_l2_minibatch_seeded_adam",
                dict(SIGMOID_L2, optimizer="adam", learning_rate=0.05, batch_size=1, seed=42,
                     max_iterations=10, trace_every=1)))
    out.append(("tanh_mse_two_outputs_rmsprop",
                {"inputs": [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [1.0, 1.0]],
                 "targets": [[0.2, 0.9], [0.7, -0.1], [-0.4, 0.4], [0.95, -0.3]],
                 "activation": "tanh", "loss": "mse",
                 "init": {"weights": [[0.1, -0.2], [0.3, 0.05]], "bias": [0.01, -0.02]},
                 "optimizer": "rmsprop", "learning_rate": 0.02, "max_iterations": 15, "trace_every": 3}))
    out.append(("sigmoid_l2_two_outputs_seeded_nesterov_batch_3",
                {"inputs": [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [1.0, 1.0], [0.0, -0.5]],
                 "targets": [[0.2, 0.9], [0.7, 0.1], [0.4, 0.4], [0.95, 0.3], [0.5, 0.5]],
                 "activation": "sigmoid", "loss": "l2", "init": {"weights": 0.1},
                 "optimizer": "nesterov", "learning_rate": 0.5, "batch_size": 3, "seed": 7,
                 "max_iterations": 12, "trace_every": 2}))
    gates = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    out.append(("sigmoid_bce_and_gate_adam",
                {"inputs": gates, "targets": [0.0, 0.0, 0.0, 1.0], "activation": "sigmoid", "loss": "bce",
                 "init": {"weights": [0.1, -0.1], "bias": 0.0}, "optimizer": "adam",
                 "learning_rate": 0.1, "max_iterations": 12, "trace_every": 1}))
    out.append(("sigmoid_bce_soft_targets_minibatch_in_order_sgd",
                {"inputs": X3, "targets": [0.9, 0.1, 0.6], "activation": "sigmoid", "loss": "bce",
                 "init": {"weights": [0.3, -0.1], "bias": -0.2}, "learning_rate": 0.5,
                 "batch_size": 2, "max_iterations": 12, "trace_every": 1}))
    out.append(("softmax_cross_entropy_class_indices_momentum",
                {"inputs": [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [1.0, 1.0], [0.0, -0.5]],
                 "targets": [2, 0, 1, 0, 2], "activation": "softmax", "loss": "cross_entropy",
                 "init": {"weights": [[0.1, 0.0, -0.1], [0.05, -0.2, 0.3]], "bias": [0.0, 0.1, -0.1]},
                 "optimizer": "momentum", "learning_rate": 0.3, "max_iterations": 12, "trace_every": 1}))
    out.append(("softmax_cross_entropy_distributions_seeded_rmsprop",
                {"inputs": [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [1.0, 1.0]],
                 "targets": [[0.2, 0.8], [0.7, 0.3], [0.5, 0.5], [1.0, 0.0]],
                 "activation": "softmax", "loss": "cross_entropy",
                 "init": {"weights": [[0.1, -0.2], [0.3, 0.05]], "bias": [0.01, -0.02]},
                 "optimizer": "rmsprop", "learning_rate": 0.05, "batch_size": 3, "seed": 11,
                 "max_iterations": 12, "trace_every": 1}))
    out.append(("identity_mse_loss_below",
                dict(IDENTITY_MSE, optimizer="sgd", learning_rate=0.1, max_iterations=500,
                     trace_every=10, stop={"loss_below": 0.05})))
    out.append(("sigmoid_l2_abs_error_below",
                dict(SIGMOID_L2, optimizer="sgd", learning_rate=2.0, max_iterations=500,
                     trace_every=10, stop={"abs_error_below": 0.3})))
    out.append(("identity_mse_gradient_norm_below_without_bias",
                dict(IDENTITY_MSE, optimizer="adam", learning_rate=0.05, use_bias=False,
                     max_iterations=500, trace_every=25, stop={"gradient_norm_below": 0.01})))
    out.append(("identity_mse_diverges",
                dict(IDENTITY_MSE, optimizer="sgd", learning_rate=3.0, max_iterations=1000,
                     trace_every=7)))
    out.append(("textbook_neuron_l2",
                {"inputs": [[1.0]], "targets": [0.5], "activation": "sigmoid", "loss": "l2",
                 "init": {"weights": math.log(9.0), "bias": 0.0}, "use_bias": False,
                 "learning_rate": 0.2, "max_iterations": 1000, "stop": {"loss_below": 0.001},
                 "trace_every": 20}))
    out.append(("textbook_neuron_l2_bias_trained",
                {"inputs": [[1.0]], "targets": [0.5], "activation": "sigmoid", "loss": "l2",
                 "init": {"weights": math.log(9.0), "bias": 0.0}, "use_bias": True,
                 "learning_rate": 0.2, "max_iterations": 1000, "stop": {"loss_below": 0.001},
                 "trace_every": 20}))
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "tests", "fixtures", "train_reference.json")
    fixture = [{"name": name, "request": req, "expected": train(req)} for name, req in cases()]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:  # one case per line: small diffs when a case changes
        f.write("[\n" + ",\n".join(json.dumps(case) for case in fixture) + "\n]\n")
    for case in fixture:
        e = case["expected"]
        print(f"{case['name']}: {e['stop_reason']} at {e['iterations']}, {len(e['trace'])} rows",
              file=sys.stderr)


if __name__ == "__main__":
    main()
