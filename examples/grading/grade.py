#!/usr/bin/env python3
"""Grades every student of submissions/ through a losslab server.

Each student wrote numpy functions (submissions/<student>/losses.py): mse, mse_grad, bce,
bce_grad_logits and train_neuron. This script runs them on hidden inputs, sends one
POST /grade per student (the tasks, and the student's results as the claimed answers)
through the losslab client, and writes

    out/<student>/results.json   Gradescope's results format (score, one test per item)
    out/grades.csv               student, score, max_score, and the diagnosed mistakes

    grade.py [--url http://127.0.0.1:8080] [--submissions submissions] [--out out]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from losslab import Client, GradeResult

HERE = Path(__file__).resolve().parent
SEED = 2024  # the hidden inputs: the same for every student, never shown to them


def hidden_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    return {
        "a": rng.normal(size=(8, 3)),
        "y": rng.normal(size=(8, 3)),
        "p": rng.uniform(0.05, 0.95, size=20),
        "t": (rng.uniform(size=20) > 0.5).astype(np.float64),
        "z": rng.normal(scale=2.0, size=(6, 2)),
        "zt": (rng.uniform(size=(6, 2)) > 0.5).astype(np.float64),
    }


# The textbook's single neuron (API.md /train): x = 1, y = 0.5, w0 = ln 9, no bias,
# learning rate 0.2, stop when the loss ½(a − y)² drops below 0.001.
NEURON = {"x": 1.0, "y": 0.5, "w": math.log(9), "lr": 0.2, "loss_below": 0.001}
NEURON_TASK = {
    "inputs": [[NEURON["x"]]], "targets": [NEURON["y"]], "activation": "sigmoid", "loss": "l2",
    "init": {"weights": NEURON["w"], "bias": 0}, "use_bias": False,
    "learning_rate": NEURON["lr"], "max_iterations": 10_000, "stop": {"loss_below": NEURON["loss_below"]},
}  # fmt: skip


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"submission_{path.parent.name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def claim(fn: Any, *args: Any) -> Any:
    """The student's result, or a string saying how their code failed (graded as wrong)."""
    try:
        out = fn(*args)
    except Exception as e:  # noqa: BLE001 - any failure of student code is a wrong answer
        return f"the function raised {type(e).__name__}: {e}"
    return out.tolist() if isinstance(out, np.ndarray) else out


def items_for(student: ModuleType, x: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    iterations, w = (None, None)
    trained = claim(student.train_neuron, NEURON["x"], NEURON["y"], NEURON["w"], NEURON["lr"], NEURON["loss_below"])
    if isinstance(trained, (tuple, list)) and len(trained) == 2:
        iterations, w = trained
    return [
        {"id": "mse", "task": {"loss": {"kind": "mse", "predictions": x["a"], "targets": x["y"]}},
         "answer": {"loss": claim(student.mse, x["a"], x["y"])}},
        {"id": "mse_grad", "task": {"loss": {"kind": "mse", "predictions": x["a"], "targets": x["y"], "gradient": True}},
         "answer": {"gradient": claim(student.mse_grad, x["a"], x["y"])}},
        {"id": "bce", "task": {"loss": {"kind": "bce", "predictions": x["p"], "targets": x["t"]}},
         "answer": {"loss": claim(student.bce, x["p"], x["t"])}},
        {"id": "bce_grad_logits",
         "task": {"gradient": {"loss": "bce", "logits": x["z"], "targets": x["zt"], "activation": "sigmoid"}},
         "answer": {"d_logits": claim(student.bce_grad_logits, x["z"], x["zt"])}},
        {"id": "train_neuron", "points": 2, "task": {"train": NEURON_TASK},
         "answer": {"iterations": iterations if iterations is not None else trained,
                    "final": {"weights": [w] if w is not None else trained}}},
    ]  # fmt: skip


def gradescope(result: GradeResult) -> dict[str, Any]:
    """Gradescope's results.json: the total and one test per item with its feedback."""
    return {
        "score": result.score,
        "tests": [
            {"name": i.id, "score": i.score, "max_score": i.max_score,
             "status": "passed" if i.status == "passed" else "failed", "output": i.feedback}
            for i in result.items
        ],
    }  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--submissions", type=Path, default=HERE / "submissions")
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()
    x = hidden_inputs()
    rows = []
    with Client(args.url) as client:
        for folder in sorted(p for p in args.submissions.iterdir() if (p / "losses.py").exists()):
            try:
                student = load(folder / "losses.py")
            except Exception:  # noqa: BLE001 - a submission that does not import scores 0
                print(f"{folder.name}: does not import\n{traceback.format_exc()}", file=sys.stderr)
                continue
            result = client.grade(items_for(student, x), reveal="diff")
            assert isinstance(result, GradeResult)
            out = args.out / folder.name
            out.mkdir(parents=True, exist_ok=True)
            (out / "results.json").write_text(json.dumps(gradescope(result), indent=2) + "\n")
            mistakes = sorted({f"{i.id}:{m}" for i in result.items for m in i.mistakes})
            rows.append([folder.name, result.score, result.max_score, " ".join(mistakes)])
            print(f"{folder.name:8} {result.score:g}/{result.max_score:g}  {' '.join(mistakes)}")
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "grades.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "score", "max_score", "mistakes"])
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
