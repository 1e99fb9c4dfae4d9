"""What this client knows of the API: each operation (method, path) and the method that
calls it. A test compares this with openapi/openapi.json, and each operation's request
fields with the keyword parameters of its method, so the spec cannot grow past the client
unnoticed."""

from __future__ import annotations

OPERATIONS: dict[tuple[str, str], str] = {
    ("post", "/loss/{kind}"): "loss",
    ("post", "/gradient"): "gradient",
    ("post", "/train"): "train",
    ("post", "/grade"): "grade",
    ("post", "/landscape"): "landscape",
    ("get", "/losses"): "losses",
    ("get", "/train/examples"): "examples",
    ("get", "/landscape/examples"): "landscape_examples",
    ("get", "/healthz"): "health",
    ("get", "/readyz"): "ready",
    ("get", "/version"): "version",
    ("get", "/metrics"): "metrics",
}
