"""Just enough of the ONNX file format to write a graph of tree-ensemble nodes, in numpy.

The function builds its tree graphs (``tree_graphs``) when it loads a model, from the node
arrays it already holds, so nothing ONNX-shaped is stored and the layer needs no ``onnx``
package (protobuf and 30 MiB). An ONNX model is a protocol-buffers message; this module
writes the few messages a graph of ``ai.onnx.ml`` tree ensembles uses (model, graph, node,
attribute, tensor, value info), with the field numbers of ``onnx.proto``. Repeated numbers
are written packed, which every protobuf parser accepts for repeated scalars, so a
350,000-node forest is a handful of numpy operations rather than a Python loop per node.
The tests parse the output with the ``onnx`` package and run it with onnxruntime.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

# Wire types.
_VARINT, _LENGTH, _FIXED32 = 0, 2, 5
# AttributeProto.AttributeType values.
_FLOAT, _INT, _STRING, _TENSOR, _FLOATS, _INTS, _STRINGS = 1, 2, 3, 4, 6, 7, 8
# TensorProto.DataType values.
FLOAT32, UINT8, INT64, DOUBLE = 1, 2, 7, 11
_NUMPY_TYPES = {FLOAT32: "<f4", UINT8: "u1", INT64: "<i8", DOUBLE: "<f8"}


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64: two's complement, ten bytes
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varints(values: np.ndarray) -> bytes:
    """Many integers as consecutive varints, vectorised (the packed encoding's payload)."""
    v = np.asarray(values, dtype=np.int64).astype(np.uint64).ravel()
    if not v.size:
        return b""
    shifts = np.arange(10, dtype=np.uint64) * np.uint64(7)
    groups = (v[:, None] >> shifts) & np.uint64(0x7F)  # (n, 10) seven-bit groups, low first
    used = groups != 0
    # Bytes per value: up to its highest non-zero group (at least one, for zero).
    length = np.where(used.any(axis=1), 10 - np.argmax(used[:, ::-1], axis=1), 1)
    column = np.arange(10)
    groups[column[None, :] < (length - 1)[:, None]] |= np.uint64(0x80)
    return groups.astype(np.uint8)[column[None, :] < length[:, None]].tobytes()


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _key(field, _LENGTH) + _varint(len(payload)) + payload


def _string(field: int, text: str) -> bytes:
    return _bytes_field(field, text.encode())


def _int_field(field: int, value: int) -> bytes:
    return _key(field, _VARINT) + _varint(value)


@dataclass(frozen=True)
class Attribute:
    """One node attribute, already encoded."""

    encoded: bytes

    @classmethod
    def of_int(cls, name: str, value: int) -> Attribute:
        return cls(_string(1, name) + _int_field(20, _INT) + _int_field(3, value))

    @classmethod
    def of_float(cls, name: str, value: float) -> Attribute:
        payload = np.asarray([value], dtype="<f4").tobytes()
        return cls(_string(1, name) + _int_field(20, _FLOAT) + _key(2, _FIXED32) + payload)

    @classmethod
    def of_string(cls, name: str, value: str) -> Attribute:
        return cls(_string(1, name) + _int_field(20, _STRING) + _bytes_field(4, value.encode()))

    @classmethod
    def of_ints(cls, name: str, values: np.ndarray) -> Attribute:
        packed = _bytes_field(8, varints(values)) if np.size(values) else b""
        return cls(_string(1, name) + _int_field(20, _INTS) + packed)

    @classmethod
    def of_floats(cls, name: str, values: np.ndarray) -> Attribute:
        data = np.asarray(values, dtype="<f4").tobytes()
        packed = _bytes_field(7, data) if data else b""
        return cls(_string(1, name) + _int_field(20, _FLOATS) + packed)

    @classmethod
    def of_strings(cls, name: str, values: Sequence[str]) -> Attribute:
        # Strings cannot be packed: one field each (``values`` repeats a few distinct words).
        cache: dict[str, bytes] = {}
        parts = [cache.get(v) or cache.setdefault(v, _bytes_field(9, v.encode())) for v in values]
        return cls(_string(1, name) + _int_field(20, _STRINGS) + b"".join(parts))

    @classmethod
    def of_tensor(cls, name: str, values: np.ndarray, data_type: int) -> Attribute:
        return cls(
            _string(1, name) + _int_field(20, _TENSOR) + _bytes_field(5, tensor(values, data_type))
        )


def tensor(values: np.ndarray, data_type: int) -> bytes:
    """A one-dimensional TensorProto with its values as raw little-endian bytes."""
    data = np.ascontiguousarray(values, dtype=_NUMPY_TYPES[data_type])
    return (
        _bytes_field(1, varints(np.asarray([data.size])))  # dims
        + _int_field(2, data_type)
        + _bytes_field(9, data.tobytes())  # raw_data
    )


def node(
    op_type: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    attributes: Iterable[Attribute] = (),
    *,
    domain: str = "",
    name: str = "",
) -> bytes:
    """A NodeProto."""
    out = b"".join(_string(1, i) for i in inputs) + b"".join(_string(2, o) for o in outputs)
    if name:
        out += _string(3, name)
    out += _string(4, op_type)
    out += b"".join(_bytes_field(5, a.encoded) for a in attributes)
    if domain:
        out += _string(7, domain)
    return out


def value_info(name: str, data_type: int, shape: Sequence[int | str]) -> bytes:
    """A ValueInfoProto for a tensor (a string dimension is symbolic, e.g. the batch)."""
    dims = b"".join(
        _bytes_field(1, _string(2, d) if isinstance(d, str) else _int_field(1, d)) for d in shape
    )
    tensor_type = _int_field(1, data_type) + _bytes_field(2, dims)
    return _string(1, name) + _bytes_field(2, _bytes_field(1, tensor_type))


def model(
    nodes: Sequence[bytes],
    *,
    inputs: Sequence[bytes],
    outputs: Sequence[bytes],
    opsets: dict[str, int],
    name: str = "graph",
    ir_version: int = 10,
) -> bytes:
    """A ModelProto holding one graph; ``opsets`` maps each domain used to its version."""
    graph = (
        b"".join(_bytes_field(1, n) for n in nodes)
        + _string(2, name)
        + b"".join(_bytes_field(11, i) for i in inputs)
        + b"".join(_bytes_field(12, o) for o in outputs)
    )
    opset_imports = b"".join(
        _bytes_field(8, _string(1, domain) + _int_field(2, version))
        for domain, version in opsets.items()
    )
    return (
        _int_field(1, ir_version)
        + _string(2, "tickerserve")
        + opset_imports
        + _bytes_field(7, graph)
    )
