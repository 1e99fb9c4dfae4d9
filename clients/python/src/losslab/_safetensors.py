"""The safetensors format in a few lines of numpy (https://huggingface.co/docs/safetensors).

A file is 8 bytes (u64, little-endian) of header length, the header (JSON: per tensor its
dtype, shape and byte range; ``__metadata__`` a map of strings), then the tensors' bytes.
The header is padded with spaces to a multiple of 8 so every f64 tensor is aligned.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import numpy as np

MEDIA_TYPE = "application/x-safetensors"

_TO_DTYPE = {"F64": "<f8", "F32": "<f4", "I64": "<i8", "I32": "<i4"}
_FROM_KIND = {("f", 8): "F64", ("f", 4): "F32", ("i", 8): "I64", ("i", 4): "I32"}


def tensor_dtype(arr: np.ndarray) -> str:
    """The safetensors dtype an array is sent as (F64 unless it is F32, I64 or I32)."""
    return _FROM_KIND.get((arr.dtype.kind, arr.dtype.itemsize), "F64")


def pack(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """Writes ``tensors`` (in order) and ``metadata`` as one safetensors file."""
    header: dict[str, object] = {}
    blobs = []
    offset = 0
    for name, arr in tensors.items():
        st = tensor_dtype(arr)
        flat = np.ascontiguousarray(arr, dtype=_TO_DTYPE[st]).reshape(-1)
        header[name] = {"dtype": st, "shape": list(arr.shape), "data_offsets": [offset, offset + flat.nbytes]}
        blobs.append(flat.view(np.uint8))
        offset += flat.nbytes
    if metadata:
        header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    # bytes.join takes the arrays' buffers directly: each tensor is copied once
    return b"".join([struct.pack("<Q", len(text)), text, *blobs])


class FormatError(ValueError):
    """The bytes are not a safetensors file this client can read."""


def unpack(buf: bytes | bytearray) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Reads a safetensors file: its tensors (views over ``buf``) and its metadata."""
    if len(buf) < 8:
        raise FormatError("shorter than the 8-byte header length")
    (n,) = struct.unpack_from("<Q", buf)
    if 8 + n > len(buf):
        raise FormatError("the header length runs past the end")
    try:
        header = json.loads(bytes(buf[8 : 8 + n]))
    except ValueError as e:
        raise FormatError(f"the header is not JSON: {e}") from None
    meta = header.pop("__metadata__", None) or {}
    start = 8 + n
    out = {}
    for name, info in header.items():
        dtype = _TO_DTYPE.get(info["dtype"])
        if dtype is None:
            raise FormatError(f"tensor {name!r} has dtype {info['dtype']}, not one of {sorted(_TO_DTYPE)}")
        a, b = info["data_offsets"]
        count = (b - a) // np.dtype(dtype).itemsize
        if start + b > len(buf):
            raise FormatError(f"tensor {name!r} runs past the end")
        out[name] = np.frombuffer(buf, dtype=dtype, count=count, offset=start + a).reshape(info["shape"])
    return out, meta
