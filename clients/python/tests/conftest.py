"""A live losslab release server for the tests: $LOSSLAB_BIN, else the release binary in
$CARGO_TARGET_DIR (or the repository's target/), started on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[3]


def _binary() -> Path:
    if os.environ.get("LOSSLAB_BIN"):
        return Path(os.environ["LOSSLAB_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return target / "release" / "losslab"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(*args: str) -> Iterator[str]:
    binary = _binary()
    if not binary.exists():
        pytest.fail(f"no losslab binary at {binary}: run cargo build --release (or set LOSSLAB_BIN)")
    port = _free_port()
    env = {**os.environ, "LOSSLAB_ADDR": f"127.0.0.1:{port}"}
    proc = subprocess.Popen([str(binary), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                pytest.fail(f"losslab exited with {proc.returncode}")
            time.sleep(0.05)
        else:
            pytest.fail("losslab did not answer /healthz")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    yield from _start()


@pytest.fixture(scope="session")
def limited_server() -> Iterator[str]:
    """A server allowing one request per second per client IP."""
    yield from _start("--rate-limit-per-ip", "1")


@pytest.fixture(scope="session")
def openapi() -> dict:
    import json

    return json.loads((REPO / "openapi" / "openapi.json").read_text())
