"""Typed results: numpy float64 arrays for the arrays of an answer, the other fields as
attributes. Built from a decoded JSON answer, or from a safetensors answer's tensors plus
its ``__metadata__.response``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Union

import numpy as np

Number = float
Loss = Union[float, np.ndarray]
"""A reduced loss (``mean``, ``sum``) or the terms (``none``)."""
Param = Union[float, np.ndarray]
"""A weight or bias: a number, or an array."""


class _Eq:
    """Equality field by field, arrays by shape and value (numpy's == is elementwise)."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for f in fields(self):  # type: ignore[arg-type]
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]


def array(x: Any) -> np.ndarray:
    """An answer's array as float64 (lists of lists become a matrix)."""
    return np.asarray(x, dtype=np.float64)


def _loss(x: Any) -> Loss:
    return array(x) if isinstance(x, (list, np.ndarray)) else float(x)


def _param(x: Any) -> Param:
    return array(x) if isinstance(x, (list, np.ndarray)) else float(x)


def _opt(x: Any) -> np.ndarray | None:
    return None if x is None else array(x)


@dataclass(frozen=True)
class FieldError:
    """One offending field: a JSON pointer into the request and what is wrong there."""

    field: str
    message: str


@dataclass(frozen=True, eq=False)
class LossResult(_Eq):
    """POST /loss/{kind}."""

    kind: str
    reduction: str
    count: int
    loss: Loss
    gradient: np.ndarray | None = None
    guard: str | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> LossResult:
        return cls(d["kind"], d["reduction"], int(d["count"]), _loss(d["loss"]), _opt(d.get("gradient")), d.get("guard"))


@dataclass(frozen=True)
class CheckResult:
    """A central-difference gradient check."""

    epsilon: float
    max_abs_error: float
    max_rel_error: float
    relative_difference: float
    passed: bool

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CheckResult:
        return cls(
            float(d["epsilon"]),
            float(d["max_abs_error"]),
            float(d["max_rel_error"]),
            float(d["relative_difference"]),
            bool(d["passed"]),
        )


@dataclass(frozen=True, eq=False)
class GradientResult(_Eq):
    """POST /gradient."""

    loss: Loss
    count: int
    d_predictions: np.ndarray
    activations: np.ndarray | None = None
    d_logits: np.ndarray | None = None
    check: CheckResult | None = None
    guard: str | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> GradientResult:
        return cls(
            _loss(d["loss"]),
            int(d["count"]),
            array(d["d_predictions"]),
            _opt(d.get("activations")),
            _opt(d.get("d_logits")),
            CheckResult.from_json(d["check"]) if d.get("check") is not None else None,
            d.get("guard"),
        )


@dataclass(frozen=True, eq=False)
class TrainState(_Eq):
    """The parameters after ``iteration`` updates and their loss."""

    iteration: int
    weights: Param
    bias: Param
    loss: float

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TrainState:
        return cls(int(d["iteration"]), _param(d["weights"]), _param(d["bias"]), float(d["loss"]))


@dataclass(frozen=True, eq=False)
class TraceRow(_Eq):
    """One state of a training run, evaluated before the next update."""

    iteration: int
    loss: float
    weights: Param
    bias: Param
    gradient_weights: Param
    gradient_bias: Param

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TraceRow:
        return cls(
            int(d["iteration"]),
            float(d["loss"]),
            _param(d["weights"]),
            _param(d["bias"]),
            _param(d["gradient_weights"]),
            _param(d["gradient_bias"]),
        )


@dataclass(frozen=True, eq=False)
class TrainResult(_Eq):
    """POST /train (a streamed run's summary has an empty trace)."""

    iterations: int
    converged: bool
    stop_reason: str
    final: TrainState
    trace: list[TraceRow] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TrainResult:
        return cls(
            int(d["iterations"]),
            bool(d["converged"]),
            d["stop_reason"],
            TrainState.from_json(d["final"]),
            [TraceRow.from_json(r) for r in d.get("trace", [])],
        )


@dataclass(frozen=True)
class TrainExample:
    """A named, ready-made request: of /train (GET /train/examples) or of /landscape
    (GET /landscape/examples)."""

    name: str
    description: str
    request: dict[str, Any]


@dataclass(frozen=True)
class GradeItem:
    """One graded item: its verdict, checks (JSON pointers into the answer), diagnosis of
    classic mistakes and the feedback paragraph."""

    id: str
    status: str
    score: float
    max_score: float
    checks: list[dict[str, Any]]
    diagnosis: list[dict[str, Any]]
    feedback: str
    problem: dict[str, Any] | None = None

    @property
    def mistakes(self) -> list[str]:
        """The ids of the diagnosed mistakes, in the server's order."""
        return [d["mistake"] for d in self.diagnosis]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> GradeItem:
        return cls(
            str(d["id"]),
            d["status"],
            float(d["score"]),
            float(d["max_score"]),
            list(d.get("checks", [])),
            list(d.get("diagnosis", [])),
            d.get("feedback", ""),
            d.get("problem"),
        )


@dataclass(frozen=True)
class GradeResult:
    """POST /grade (``format: "losslab"``)."""

    score: float
    max_score: float
    count: int
    passed: int
    failed: int
    errors: int
    items: list[GradeItem]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> GradeResult:
        return cls(
            float(d["score"]),
            float(d["max_score"]),
            int(d["count"]),
            int(d["passed"]),
            int(d["failed"]),
            int(d["errors"]),
            [GradeItem.from_json(i) for i in d["items"]],
        )


@dataclass(frozen=True)
class GradescopeResult:
    """POST /grade with ``format: "gradescope"``: Gradescope's results.json, as sent."""

    score: float
    tests: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "tests": self.tests}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> GradescopeResult:
        return cls(float(d["score"]), list(d["tests"]))
