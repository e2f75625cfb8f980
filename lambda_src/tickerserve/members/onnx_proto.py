"""Just enough of the ONNX file format to write a graph of tree-ensemble nodes, in numpy, and
to read a model's fields (``fields``) to put nodes in front of its graph (``graph_prefix``).

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

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

# Wire types.
VARINT, LENGTH, _FIXED64, _FIXED32 = 0, 2, 1, 5
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


def bytes_field(field: int, payload: bytes) -> bytes:
    return _key(field, LENGTH) + _varint(len(payload)) + payload


def string_field(field: int, text: str) -> bytes:
    return bytes_field(field, text.encode())


def int_field(field: int, value: int) -> bytes:
    return _key(field, VARINT) + _varint(value)


@dataclass(frozen=True)
class Attribute:
    """One node attribute, already encoded."""

    encoded: bytes

    @classmethod
    def of_int(cls, name: str, value: int) -> Attribute:
        return cls(string_field(1, name) + int_field(20, _INT) + int_field(3, value))

    @classmethod
    def of_float(cls, name: str, value: float) -> Attribute:
        payload = np.asarray([value], dtype="<f4").tobytes()
        return cls(string_field(1, name) + int_field(20, _FLOAT) + _key(2, _FIXED32) + payload)

    @classmethod
    def of_string(cls, name: str, value: str) -> Attribute:
        return cls(string_field(1, name) + int_field(20, _STRING) + bytes_field(4, value.encode()))

    @classmethod
    def of_ints(cls, name: str, values: np.ndarray) -> Attribute:
        packed = bytes_field(8, varints(values)) if np.size(values) else b""
        return cls(string_field(1, name) + int_field(20, _INTS) + packed)

    @classmethod
    def of_floats(cls, name: str, values: np.ndarray) -> Attribute:
        data = np.asarray(values, dtype="<f4").tobytes()
        packed = bytes_field(7, data) if data else b""
        return cls(string_field(1, name) + int_field(20, _FLOATS) + packed)

    @classmethod
    def of_strings(cls, name: str, values: Sequence[str]) -> Attribute:
        # Strings cannot be packed: one field each (``values`` repeats a few distinct words).
        cache: dict[str, bytes] = {}
        parts = [cache.get(v) or cache.setdefault(v, bytes_field(9, v.encode())) for v in values]
        return cls(string_field(1, name) + int_field(20, _STRINGS) + b"".join(parts))

    @classmethod
    def of_tensor(cls, name: str, values: np.ndarray, data_type: int) -> Attribute:
        return cls(
            string_field(1, name)
            + int_field(20, _TENSOR)
            + bytes_field(5, tensor(values, data_type))
        )


def tensor(values: np.ndarray, data_type: int, *, name: str = "", shaped: bool = False) -> bytes:
    """A TensorProto with its values as raw little-endian bytes: one-dimensional, or with
    ``shaped`` in the values' own shape (none for a scalar); ``name`` for an initializer."""
    data = np.ascontiguousarray(values, dtype=_NUMPY_TYPES[data_type])
    dims = data.shape if shaped else (data.size,)
    return (
        (bytes_field(1, varints(np.asarray(dims))) if dims else b"")
        + int_field(2, data_type)
        + (string_field(8, name) if name else b"")
        + bytes_field(9, data.tobytes())  # raw_data
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
    out = b"".join(string_field(1, i) for i in inputs) + b"".join(
        string_field(2, o) for o in outputs
    )
    if name:
        out += string_field(3, name)
    out += string_field(4, op_type)
    out += b"".join(bytes_field(5, a.encoded) for a in attributes)
    if domain:
        out += string_field(7, domain)
    return out


def value_info(name: str, data_type: int, shape: Sequence[int | str | None]) -> bytes:
    """A ValueInfoProto for a tensor (a string dimension is symbolic, e.g. the batch; None
    is unknown)."""
    dims = b"".join(bytes_field(1, _dimension(d)) for d in shape)
    tensor_type = int_field(1, data_type) + bytes_field(2, dims)
    return string_field(1, name) + bytes_field(2, bytes_field(1, tensor_type))


def _dimension(size: int | str | None) -> bytes:
    if size is None:
        return b""
    return string_field(2, size) if isinstance(size, str) else int_field(1, size)


def model(
    nodes: Sequence[bytes],
    *,
    inputs: Sequence[bytes],
    outputs: Sequence[bytes],
    opsets: dict[str, int],
    initializers: Sequence[bytes] = (),
    name: str = "graph",
    ir_version: int = 10,
) -> bytes:
    """A ModelProto holding one graph; ``opsets`` maps each domain used to its version;
    ``initializers``: named tensors (``tensor(..., name=...)``)."""
    graph = (
        b"".join(bytes_field(1, n) for n in nodes)
        + string_field(2, name)
        + b"".join(bytes_field(5, t) for t in initializers)
        + b"".join(bytes_field(11, i) for i in inputs)
        + b"".join(bytes_field(12, o) for o in outputs)
    )
    opset_imports = b"".join(
        bytes_field(8, string_field(1, domain) + int_field(2, version))
        for domain, version in opsets.items()
    )
    return (
        int_field(1, ir_version)
        + string_field(2, "tickerserve")
        + opset_imports
        + bytes_field(7, graph)
    )


# -- reading -------------------------------------------------------------------------------------
class Field(NamedTuple):
    """One field of a message: its number, wire type, value (an int, or the bytes of a
    length-delimited or fixed-size field) and its own bytes, key included."""

    number: int
    wire: int
    value: int | bytes
    raw: bytes


def fields(message: bytes) -> Iterator[Field]:
    """Each field of ``message``, in order; ``ValueError`` for bytes that end inside a field
    or use the long-gone group wire types."""
    position, end = 0, len(message)
    while position < end:
        start = position
        key, position = _read_varint(message, position)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == VARINT:
            value, position = _read_varint(message, position)
        else:
            if wire == LENGTH:
                size, position = _read_varint(message, position)
            elif wire in (_FIXED64, _FIXED32):
                size = 8 if wire == _FIXED64 else 4
            else:
                raise ValueError(f"wire type {wire}")
            value, position = message[position : position + size], position + size
        if position > end or number == 0:
            raise ValueError("a field runs past the end of its message")
        yield Field(number, wire, value, message[start:position])


def messages(message: int | bytes, number: int) -> list[bytes]:
    """The values of the length-delimited fields numbered ``number``, in order (none in a
    value that is no message)."""
    if not isinstance(message, bytes):
        return []
    return [f.value for f in fields(message) if f.number == number and isinstance(f.value, bytes)]


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("a varint runs past the end of its message")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
