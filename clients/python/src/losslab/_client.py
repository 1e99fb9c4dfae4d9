"""The HTTP client: one method per operation of the losslab API (API.md), numpy in and out.

Arrays go as JSON, or — numpy arrays of at least ``binary_threshold`` elements — as a
safetensors body, the answer then asked for as safetensors too (API.md "Binary bodies").
Both give the same bits: JSON numbers are printed shortest-round-trip and parsed to the
nearest float64 on both sides.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import httpx
import numpy as np

from . import _safetensors as st
from ._results import (
    FieldError,
    GradeResult,
    GradescopeResult,
    GradientResult,
    LossResult,
    TraceRow,
    TrainExample,
    TrainResult,
    array,
)

ArrayLike = Union[Sequence[float], Sequence[Sequence[float]], np.ndarray]
"""A flat array [n] or a matrix [m][k] (rows = samples): a list or a numpy array."""
Reduction = Literal["mean", "sum", "none"]

NDJSON = "application/x-ndjson"
PROBLEM = "application/problem+json"


class LosslabError(Exception):
    """An error answer (application/problem+json, RFC 9457), or a transport failure
    (``status`` 0). ``errors`` lists the offending fields as JSON pointers into the
    request (``/targets/3``; a safetensors body's pointers name the tensor)."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[FieldError] | None = None,
        type: str = "about:blank",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.type = type
        self.retry_after = retry_after

    @property
    def fields(self) -> list[str]:
        """The pointers of ``errors``."""
        return [e.field for e in self.errors]

    @classmethod
    def from_problem(cls, status: int, body: Any, retry_after: float | None = None) -> LosslabError:
        if isinstance(body, Mapping) and "detail" in body:
            errors = [FieldError(e.get("field", ""), e.get("message", "")) for e in body.get("errors") or []]
            return cls(
                int(body.get("status", status)),
                str(body.get("title", "")),
                str(body["detail"]),
                errors,
                str(body.get("type", "about:blank")),
                retry_after,
            )
        return cls(status, "Error", str(body), [], retry_after=retry_after)


@dataclass(frozen=True)
class Health:
    """GET /healthz and GET /version."""

    ok: bool
    version: str | None


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _plain(x: Any) -> Any:
    """numpy values → JSON-ready Python values (recursively), exact."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _dumps(body: Mapping[str, Any]) -> bytes:
    # repr of a float is its shortest round-trip text: the server reads the same float64
    return json.dumps(_plain(body), separators=(",", ":")).encode()


def _tensor(name: str, x: np.ndarray) -> np.ndarray:
    """What a numpy array is sent as: F64, F32 kept, integer class indices kept for
    targets (I64/I32, widened exactly by the server); anything else as float64."""
    if x.dtype.kind == "f" and x.dtype.itemsize in (4, 8):
        return x
    if name == "targets" and x.dtype.kind in "iu" and x.dtype.itemsize in (4, 8):
        return x.astype(np.int64 if x.dtype.itemsize == 8 or x.dtype.kind == "u" else np.int32, copy=False)
    return np.asarray(x, dtype=np.float64)


class Client:
    """A losslab client.

    >>> with Client("http://127.0.0.1:8080") as c:
    ...     r = c.loss("mse", [0.5, 2.0], [1.0, 0.0], gradient=True)
    ...     r.loss, r.gradient

    ``binary_threshold``: numpy inputs with at least this many elements (all arrays of a
    request together) go as safetensors, and the answer comes back so; ``binary=True`` /
    ``False`` on a call forces either. ``max_retries``: 429 and 503 answers are retried
    that many times, waiting ``Retry-After`` (else an exponential backoff from
    ``backoff`` seconds, capped at ``max_backoff``).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        api_key: str | None = None,
        timeout: float = 60.0,
        *,
        max_retries: int = 4,
        backoff: float = 0.25,
        max_backoff: float = 10.0,
        binary_threshold: int = 4096,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": "losslab-python/0.1.0"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.binary_threshold = binary_threshold

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------

    def _wait(self, attempt: int, retry_after: float | None) -> None:
        delay = retry_after if retry_after is not None else self.backoff * 2**attempt
        time.sleep(min(delay, self.max_backoff))

    def _send(self, method: str, path: str, content: bytes | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        attempt = 0
        while True:
            try:
                res = self._http.request(method, path, content=content, headers=headers)
            except httpx.HTTPError as e:
                raise LosslabError(0, "Transport error", str(e)) from e
            if res.status_code in (429, 503) and attempt < self.max_retries:
                self._wait(attempt, _retry_after(res.headers.get("retry-after")))
                attempt += 1
                continue
            if res.status_code >= 400:
                raise self._error(res.status_code, res.headers, res.content)
            return res

    @staticmethod
    def _error(status: int, headers: httpx.Headers, content: bytes) -> LosslabError:
        try:
            body: Any = json.loads(content)
        except ValueError:
            body = content.decode("utf-8", "replace") or f"HTTP {status}"
        return LosslabError.from_problem(status, body, _retry_after(headers.get("retry-after")))

    def _get(self, path: str) -> Any:
        return self._send("GET", path).json()

    def _post_json(self, path: str, body: Mapping[str, Any]) -> Any:
        return self._send("POST", path, _dumps(body), {"Content-Type": "application/json"}).json()

    def _post_arrays(self, path: str, arrays: Mapping[str, Any], rest: Mapping[str, Any], binary: bool | None) -> dict[str, Any]:
        """POSTs a request with arrays, as safetensors or JSON; returns the answer as a
        dict whose arrays are numpy float64 either way."""
        present = {k: v for k, v in arrays.items() if v is not None}
        rest = {k: v for k, v in rest.items() if v is not None}
        if binary is None:
            size = sum(v.size for v in present.values() if isinstance(v, np.ndarray))
            binary = size >= self.binary_threshold and any(isinstance(v, np.ndarray) for v in present.values())
        if not binary:
            return self._post_json(path, {**present, **rest})
        tensors = {k: _tensor(k, np.asarray(v)) for k, v in present.items()}
        body = st.pack(tensors, {"request": _dumps(rest).decode()})
        # binary f64 does not compress: ask for the answer as it is
        headers = {"Content-Type": st.MEDIA_TYPE, "Accept": st.MEDIA_TYPE, "Accept-Encoding": "identity"}
        res = self._send("POST", path, body, headers)
        if not res.headers.get("content-type", "").startswith(st.MEDIA_TYPE):
            return res.json()
        # one writable copy of the answer; the arrays are views into it
        out, meta = st.unpack(bytearray(res.content))
        answer: dict[str, Any] = json.loads(meta.get("response", "{}"))
        answer.update(out)
        return answer

    # -- operations ------------------------------------------------------------------

    def loss(
        self,
        kind: str,
        predictions: ArrayLike,
        targets: ArrayLike,
        *,
        reduction: Reduction | None = None,
        weights: ArrayLike | None = None,
        from_logits: bool | None = None,
        params: Mapping[str, Any] | None = None,
        gradient: bool | None = None,
        binary: bool | None = None,
        **extra: Any,
    ) -> LossResult:
        """POST /loss/{kind}: the loss of ``predictions`` (a) against ``targets`` (y), and
        with ``gradient=True`` dL/d(predictions). ``extra``: fields newer than this client."""
        d = self._post_arrays(
            f"/loss/{kind}",
            {"predictions": predictions, "targets": targets, "weights": weights},
            {"reduction": reduction, "from_logits": from_logits, "params": params, "gradient": gradient, **extra},
            binary,
        )
        return LossResult.from_json(d)

    def gradient(
        self,
        loss: str,
        targets: ArrayLike,
        *,
        predictions: ArrayLike | None = None,
        logits: ArrayLike | None = None,
        activation: str | None = None,
        activation_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        reduction: Reduction | None = None,
        weights: ArrayLike | None = None,
        check: bool | None = None,
        binary: bool | None = None,
        **extra: Any,
    ) -> GradientResult:
        """POST /gradient: dL/da for ``predictions``, or a, dL/da and dL/dz for ``logits``
        through ``activation``; ``check=True`` adds a central-difference check."""
        d = self._post_arrays(
            "/gradient",
            {"predictions": predictions, "logits": logits, "targets": targets, "weights": weights},
            {
                "loss": loss,
                "activation": activation,
                "activation_params": activation_params,
                "params": params,
                "reduction": reduction,
                "check": check,
                **extra,
            },
            binary,
        )
        return GradientResult.from_json(d)

    @staticmethod
    def _train_body(inputs: ArrayLike, targets: ArrayLike, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {"inputs": inputs, "targets": targets, **{k: v for k, v in fields.items() if v is not None}}

    def train(
        self,
        inputs: ArrayLike,
        targets: ArrayLike,
        *,
        loss: str,
        learning_rate: float,
        max_iterations: int,
        activation: str | None = None,
        activation_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        init: Mapping[str, Any] | None = None,
        use_bias: bool | None = None,
        optimizer: str | Mapping[str, Any] | None = None,
        batch_size: int | None = None,
        seed: int | None = None,
        stop: Mapping[str, float] | None = None,
        trace_every: int | None = None,
        **extra: Any,
    ) -> TrainResult:
        """POST /train: gradient descent on one dense layer z = X·W + b, a = act(z)."""
        body = self._train_body(inputs, targets, {
            "loss": loss, "learning_rate": learning_rate, "max_iterations": max_iterations,
            "activation": activation, "activation_params": activation_params, "params": params,
            "init": init, "use_bias": use_bias, "optimizer": optimizer, "batch_size": batch_size,
            "seed": seed, "stop": stop, "trace_every": trace_every, **extra,
        })  # fmt: skip
        return TrainResult.from_json(self._post_json("/train", body))

    def train_stream(
        self,
        inputs: ArrayLike,
        targets: ArrayLike,
        *,
        loss: str,
        learning_rate: float,
        max_iterations: int,
        **options: Any,
    ) -> Iterator[TraceRow | TrainResult]:
        """POST /train as NDJSON: yields each trace row as it is computed, then the
        summary (a :class:`TrainResult` with an empty trace). A failure mid-stream raises
        :class:`LosslabError`. Options as :meth:`train`."""
        body = _dumps(self._train_body(inputs, targets, {
            "loss": loss, "learning_rate": learning_rate, "max_iterations": max_iterations, **options,
        }))  # fmt: skip
        headers = {"Content-Type": "application/json", "Accept": NDJSON}
        attempt = 0
        while True:
            with self._http.stream("POST", "/train", content=body, headers=headers) as res:
                if res.status_code in (429, 503) and attempt < self.max_retries:
                    res.read()
                    wait = _retry_after(res.headers.get("retry-after"))
                else:
                    if res.status_code >= 400:
                        raise self._error(res.status_code, res.headers, res.read())
                    for line in res.iter_lines():
                        if not line.strip():
                            continue
                        d = json.loads(line)
                        if "stop_reason" in d:
                            yield TrainResult.from_json(d)
                        elif "iteration" in d:
                            yield TraceRow.from_json(d)
                        else:
                            raise LosslabError.from_problem(int(d.get("status", 500)), d)
                    return
            self._wait(attempt, wait)
            attempt += 1

    def grade(
        self,
        items: Sequence[Mapping[str, Any]],
        *,
        tolerance: Mapping[str, float] | None = None,
        reveal: Literal["none", "diff", "expected"] | None = None,
        format: Literal["losslab", "gradescope"] | None = None,
        **extra: Any,
    ) -> GradeResult | GradescopeResult:
        """POST /grade: grades claimed answers against losslab's own results. Each item is
        ``{"task": {"loss": {...}} | {"gradient": {...}} | {"train": {...}}, "answer":
        {...}, "id"?, "points"?, "tolerance"?, "partial"?}``; numpy arrays anywhere in an
        item are sent as lists. ``format="gradescope"`` returns Gradescope's results.json."""
        body = {"items": list(items), "tolerance": tolerance, "reveal": reveal, "format": format, **extra}
        d = self._post_json("/grade", {k: v for k, v in body.items() if v is not None})
        return GradescopeResult.from_json(d) if format == "gradescope" else GradeResult.from_json(d)

    def landscape(
        self,
        inputs: ArrayLike,
        targets: ArrayLike,
        *,
        loss: str,
        x: Mapping[str, Any],
        y: Mapping[str, Any],
        activation: str | None = None,
        activation_params: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        init: Mapping[str, Any] | None = None,
        use_bias: bool | None = None,
        path: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """POST /landscape: the loss surface of a /train setup over two parameters. The
        answer's ``loss`` grid is a float64 matrix (NaN where the loss is not finite)."""
        body = self._train_body(inputs, targets, {
            "loss": loss, "x": x, "y": y, "activation": activation,
            "activation_params": activation_params, "params": params, "init": init,
            "use_bias": use_bias, "path": path, **extra,
        })  # fmt: skip
        d = self._post_json("/landscape", body)
        d["loss"] = np.array([[np.nan if v is None else v for v in row] for row in d["loss"]], dtype=np.float64)
        for axis in ("x", "y"):
            d[axis]["values"] = array(d[axis]["values"])
        return d

    def losses(self) -> dict[str, Any]:
        """GET /losses: the loss kinds (formula, params with defaults and ranges),
        activations and optimizers."""
        return dict(self._get("/losses"))

    def examples(self) -> list[TrainExample]:
        """GET /train/examples: named /train requests, the textbook neuron first."""
        return [TrainExample(e["name"], e["description"], e["request"]) for e in self._get("/train/examples")]

    def landscape_examples(self) -> list[TrainExample]:
        """GET /landscape/examples: named /landscape requests (the textbook neuron's (w, b)
        plane under l2, then bce, each with the path of its run)."""
        return [TrainExample(e["name"], e["description"], e["request"]) for e in self._get("/landscape/examples")]

    def health(self) -> Health:
        """GET /healthz and /version: whether the service is alive, and its version."""
        try:
            ok = self._send("GET", "/healthz").status_code == 200
        except LosslabError:
            return Health(False, None)
        version = self._get("/version").get("version")
        return Health(ok, version)

    def ready(self) -> bool:
        """GET /readyz: False from SIGTERM on (or when overloaded)."""
        res = self._http.get("/readyz")
        return res.status_code == 200

    def version(self) -> str:
        """GET /version."""
        return str(self._get("/version")["version"])

    def metrics(self) -> str:
        """GET /metrics (Prometheus text)."""
        return self._send("GET", "/metrics").text
