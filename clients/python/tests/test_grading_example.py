"""The worked grading example (examples/grading): grade.py grades the six sample students
through a live server, and each gets the score and the diagnosed mistakes their code has."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "grading"

# student → (score of 6, the mistakes their submission makes on purpose)
EXPECTED = {
    "alice": (6.0, ""),
    "bob": (4.0, "mse:half_factor mse_grad:half_factor"),
    "carol": (5.0, "mse_grad:sign_flipped"),
    "dave": (5.0, "bce:log_base"),
    "erin": (4.0, "train_neuron:bias_trained"),
    "frank": (4.0, "train_neuron:off_by_one"),
}


def test_grade_py_grades_the_sample_class(server: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, str(EXAMPLE / "grade.py"), "--url", server, "--out", str(out)],
        check=True,
        timeout=120,
    )
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(EXPECTED)
    for student, (score, mistakes) in EXPECTED.items():
        assert (float(rows[student]["score"]), float(rows[student]["max_score"])) == (score, 6.0)
        assert rows[student]["mistakes"] == mistakes
        results = json.loads((out / student / "results.json").read_text())
        # Gradescope's results.json: a total and one test per item with its feedback
        assert results["score"] == score
        assert [t["name"] for t in results["tests"]] == ["mse", "mse_grad", "bce", "bce_grad_logits", "train_neuron"]
        for t in results["tests"]:
            assert t["status"] in ("passed", "failed") and t["output"]
            assert t["score"] == (t["max_score"] if t["status"] == "passed" else 0.0)
