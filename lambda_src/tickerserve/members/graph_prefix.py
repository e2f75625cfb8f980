"""A network's preprocessing as ONNX nodes in front of its graph, so that onnxruntime runs both
in one call.

Each numpy call of a compiled preprocessing costs close to a microsecond whatever its size:
three of them (a VecNormalize: subtract, divide, clip) were about 3 µs of a policy's 25, the
same steps as graph nodes a fraction of that. ``prefixed`` writes a new model: a float64 input
(``INPUT``, the old input's shape), one node per step in float64 (``Sub``, ``Div``, ``Mul``,
``Add``, ``Clip``; the step's values as initializers), and a ``Cast`` to the old input's type
(float32) that writes the old input's name, so the graph after it is unchanged and no
optimization of onnxruntime's can fuse a step with the graph's first node (a float64 graph's
``MatMul`` could take in a ``Mul``: other numbers). The element-wise operations are IEEE's in
both libraries and the cast rounds as numpy's does; the member still compares the two on
check inputs before it uses the new graph (``onnx._in_one_graph``).

It is written at the protobuf level (``onnx_proto``; the ``onnx`` package is not in the
layer): the new nodes, initializers and input are added to the model's ``graph`` field and the
old input dropped, every other field copied as it was. Steps that depend on the whole input
(``fill_missing``, ``clip_if_infinite``), a clip between per-feature bounds (``Clip`` takes
two numbers), a graph that does not take float32, one over ``MAX_MODEL_BYTES``, one whose
opset predates what the nodes need, or a model this module cannot read leave the model as it
was (None): the member then runs the steps in numpy.
"""

from __future__ import annotations

from tickerserve.members import onnx_proto as proto
from tickerserve.members.preprocessing import Preprocessing, Step

INPUT = "tickerserve/preprocessing/input"
# Larger graphs keep their steps in numpy: a few microseconds are nothing beside their run,
# and the rewrite holds several copies of the model while it loads.
MAX_MODEL_BYTES = 4 * 2**20
OUTPUT = "tickerserve/preprocessing/output"  # of ``steps_only``
_PREFIX = "tickerserve/preprocessing/"
_NODES = {"subtract": "Sub", "divide": "Div", "multiply": "Mul", "add": "Add"}
# Field numbers of onnx.proto: ModelProto.graph 7 and .opset_import 8; GraphProto.node 1,
# .initializer 5 and .input 11; ValueInfoProto.name 1 and .type 2; TypeProto.tensor_type 1;
# its elem_type 1 and shape 2; TensorShapeProto.dim 1, each a dim_value 1 or dim_param 2;
# OperatorSetIdProto.domain 1 and .version 2.
_GRAPH, _OPSET, _NODE, _INITIALIZER, _INPUT = 7, 8, 1, 5, 11


def prefixed(model: bytes, input_name: str, preprocessing: Preprocessing) -> bytes | None:
    """``model`` with ``preprocessing`` in front of its input ``input_name``, taking float64 at
    ``INPUT``; None where the steps or the model do not allow it."""
    steps = preprocessing.steps
    if not nodes_can_run(preprocessing) or len(model) > MAX_MODEL_BYTES:
        return None
    if _PREFIX.encode() in model:  # the new names would not be unique
        return None
    try:
        fields = list(proto.fields(model))
        graphs = [f.value for f in fields if f.number == _GRAPH and f.wire == proto.LENGTH]
        if len(graphs) != 1 or _opset(fields) < _opset_needed(steps):
            return None
        assert isinstance(graphs[0], bytes)
        graph = _prefixed_graph(graphs[0], input_name, steps)
    except ValueError:  # bytes that are no protobuf message
        return None
    if graph is None:
        return None
    kept = b"".join(f.raw for f in fields if f.number != _GRAPH)
    return kept + proto.bytes_field(_GRAPH, graph)


def steps_only(preprocessing: Preprocessing, shape: tuple[int, ...]) -> bytes | None:
    """A model of the nodes ``prefixed`` adds, alone: float64 in at ``INPUT`` (a batch of
    ``shape``), float64 out at ``OUTPUT``. Run beside ``Preprocessing.apply`` it shows the
    nodes compute its very numbers, before any cast could hide a difference."""
    if not nodes_can_run(preprocessing):
        return None
    nodes, tensors = _step_nodes(preprocessing.steps, OUTPUT, proto.DOUBLE)
    dims: list[int | str | None] = ["batch", *shape]
    return proto.model(
        nodes,
        inputs=[proto.value_info(INPUT, proto.DOUBLE, dims)],
        outputs=[proto.value_info(OUTPUT, proto.DOUBLE, dims)],
        opsets={"": _opset_needed(preprocessing.steps)},
        initializers=tensors,
    )


def nodes_can_run(preprocessing: Preprocessing) -> bool:
    """Whether every step is one element-wise node (a value step, a clip between numbers)."""
    steps = preprocessing.steps
    return bool(steps) and all(step.op in _NODES or _scalar_clip(step) for step in steps)


def _opset_needed(steps: tuple[Step, ...]) -> int:
    return 12 if any(step.op == "clip" for step in steps) else 7  # Clip in float64: 12


def _scalar_clip(step: Step) -> bool:
    return step.op == "clip" and step.low.shape == () and step.high.shape == ()


def _opset(fields: list[proto.Field]) -> int:
    """The version of the default (``ai.onnx``) operator set the model imports, 0 if none."""
    for field in fields:
        if field.number == _OPSET and isinstance(field.value, bytes):
            entry = {f.number: f.value for f in proto.fields(field.value)}
            version = entry.get(2)
            if entry.get(1, b"") in (b"", b"ai.onnx") and isinstance(version, int):
                return version
    return 0


def _prefixed_graph(graph: bytes, input_name: str, steps: tuple[Step, ...]) -> bytes | None:
    kept: list[bytes] = []
    shape: list[int | str | None] | None = None
    elem_type = 0
    for field in proto.fields(graph):
        value = field.value
        if field.number != _INPUT or proto.messages(value, 1) != [input_name.encode()]:
            kept.append(field.raw)
            continue
        assert isinstance(value, bytes)  # a message named input_name
        described = _tensor_type(value)
        if described is None:
            return None
        elem_type, shape = described
    if shape is None or elem_type != proto.FLOAT32:
        return None  # a float64 graph's first node could be fused with the last step's
    nodes, initializers = _step_nodes(steps, input_name, elem_type)
    # The new nodes first: a graph lists its nodes so that each input is computed before it
    # is read.
    return (
        b"".join(proto.bytes_field(_NODE, node) for node in nodes)
        + b"".join(kept)
        + b"".join(proto.bytes_field(_INITIALIZER, tensor) for tensor in initializers)
        + proto.bytes_field(_INPUT, proto.value_info(INPUT, proto.DOUBLE, shape))
    )


def _tensor_type(value_info: bytes) -> tuple[int, list[int | str | None]] | None:
    """The element type and dimensions of a tensor input; None for anything else."""
    types = proto.messages(value_info, 2)
    tensors = proto.messages(types[0], 1) if len(types) == 1 else []
    if len(tensors) != 1:
        return None
    parts = {f.number: f.value for f in proto.fields(tensors[0])}
    elem_type, shape = parts.get(1), parts.get(2)
    if not isinstance(elem_type, int) or not isinstance(shape, bytes):
        return None  # no shape: not even the rank is known
    dims: list[int | str | None] = []
    for dim in proto.messages(shape, 1):
        value = {f.number: f.value for f in proto.fields(dim)}
        size, name = value.get(1), value.get(2)
        symbolic = name.decode() if isinstance(name, bytes) and name else None
        dims.append(size if isinstance(size, int) else symbolic)
    return elem_type, dims


def _step_nodes(
    steps: tuple[Step, ...], input_name: str, elem_type: int
) -> tuple[list[bytes], list[bytes]]:
    """One node per step, in float64, then the cast that writes ``input_name``."""
    nodes: list[bytes] = []
    tensors: list[bytes] = []
    previous = INPUT
    for index, step in enumerate(steps):
        name = f"{_PREFIX}{index}"
        if step.op == "clip":
            operands = {f"{name}/low": step.low, f"{name}/high": step.high}
            op_type = "Clip"
        else:
            operands = {f"{name}/values": step.values}
            op_type = _NODES[step.op]
        tensors += [proto.tensor(v, proto.DOUBLE, name=k, shaped=True) for k, v in operands.items()]
        nodes.append(proto.node(op_type, [previous, *operands], [name], name=name))
        previous = name
    cast = proto.Attribute.of_int("to", elem_type)
    nodes.append(proto.node("Cast", [previous], [input_name], [cast], name=f"{_PREFIX}cast"))
    return nodes, tensors
