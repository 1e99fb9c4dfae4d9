"""losslab: a Python client of the losslab service — loss values, gradients, training
runs and grading, exact to the bit, numpy arrays in and out.

    from losslab import Client
    with Client("http://127.0.0.1:8080") as c:
        r = c.loss("bce", [0.9, 0.2], [1, 0], gradient=True)
        print(r.loss, r.gradient)
"""

from ._client import ArrayLike, Client, Health, LosslabError
from ._results import (
    CheckResult,
    FieldError,
    GradeItem,
    GradeResult,
    GradescopeResult,
    GradientResult,
    LossResult,
    TraceRow,
    TrainExample,
    TrainResult,
    TrainState,
)
from ._safetensors import pack as pack_safetensors
from ._safetensors import unpack as unpack_safetensors

__version__ = "0.1.0"

__all__ = [
    "ArrayLike",
    "CheckResult",
    "Client",
    "FieldError",
    "GradeItem",
    "GradeResult",
    "GradescopeResult",
    "GradientResult",
    "Health",
    "LossResult",
    "LosslabError",
    "TraceRow",
    "TrainExample",
    "TrainResult",
    "TrainState",
    "pack_safetensors",
    "unpack_safetensors",
]
