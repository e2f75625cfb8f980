"""ONNX members: networks (GRU sequence models, PPO policies, a team's own exports) run by
onnxruntime, without torch.

The member's bytes are an ONNX model (``model.onnx``) in the version folder, sha256-chained
like every artifact. Its ``options`` in ``metadata.json`` name the graph's input and outputs::

    {"input": "x", "shape": [60, 20], "outputs": {"main": "y", "value": "value"},
     "preprocessing": "preprocessing.json"}

``shape`` is one request's input without the batch axis; ``main`` is the answer (class
probabilities of a classifier or a discrete policy, a regressor's values, a box policy's
clipped action), ``value`` an optional critic value. ``preprocessing`` names the JSON steps
(``members.preprocessing``) applied before the graph, exactly as the original applied them:
where each step is an element-wise node, as float64 nodes in front of the graph
(``graph_prefix``; used only once they proved to compute the same bits, ``_in_one_graph``),
otherwise in numpy (compiled once at load: a few numpy calls a request). Rows arrive flat
(``(n, prod(shape))``, a window's rows one after the other) and leave as float64
``(n, outputs)``.

One ``InferenceSession`` per loaded version, built once, on one intra-op and one inter-op
thread: a Lambda under 1,769 MB has at most one vCPU, and on a shared machine more threads
only made batches slower and erratic (with one thread there is no pool to spin: the session
options' spinning and optimization level measured the same). A single input (a warm request)
runs through its thread's ``OneInput``, an ``IOBinding`` whose buffers the preprocessing
writes into and onnxruntime answers into; a batch through ``session.run``. Like every member,
the bytes are first loaded (and run once) in a forked child (``safe_load``): a graph that
crashes onnxruntime never reaches the serving process.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from tickerserve.errors import InvalidModel
from tickerserve.members.graph_prefix import INPUT, OUTPUT, prefixed, steps_only
from tickerserve.members.kinds import ONNX
from tickerserve.members.onnx_engine import one_thread_session, runtime
from tickerserve.members.preprocessing import Preprocessing
from tickerserve.members.safe_load import safe_load

if TYPE_CHECKING:
    from tickerserve.members.kinds import MemberSpec

logger = logging.getLogger(__name__)

MAIN, VALUE = "main", "value"
ROLES = (MAIN, VALUE)
_DTYPES: dict[str, type[np.floating[Any]]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
}


def new_session(data: bytes) -> Any:
    """An ``InferenceSession`` over the graph bytes, on one thread; ``InvalidModel`` if
    onnxruntime refuses them."""
    return one_thread_session(data, "not an ONNX model onnxruntime can run")


def run_probe_input(session: Any) -> None:
    """One run on zeros (in the probe child): a graph that only crashes when it runs is caught
    there too."""
    first = session.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in first.shape]
    session.run(None, {first.name: np.zeros(shape, dtype=_DTYPES.get(first.type, np.float32))})


def check_options(options: Mapping[str, Any]) -> None:
    """Structural checks of an ONNX member's options; raise ``ValueError``."""
    if not isinstance(options.get("input"), str) or not options["input"]:
        raise ValueError("an onnx member names its graph input (options.input)")
    shape = options.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
    ):
        raise ValueError("an onnx member's shape lists one or two positive integers")
    outputs = options.get("outputs")
    if not isinstance(outputs, dict) or not isinstance(outputs.get(MAIN), str):
        raise ValueError("an onnx member names its graph outputs (options.outputs.main)")
    unknown = set(outputs) - set(ROLES)
    if unknown or not all(isinstance(v, str) and v for v in outputs.values()):
        raise ValueError(f"onnx outputs are named by role: {', '.join(ROLES)}")
    pre = options.get("preprocessing")
    if pre is not None and not isinstance(pre, str):
        raise ValueError("onnx preprocessing names an artifact")


class OnnxMember:
    """An onnxruntime session with the preprocessing its original applied before it."""

    kind = ONNX
    trained_names: list[str] | None = None  # an ONNX graph names no features

    def __init__(
        self,
        session: Any,
        options: Mapping[str, Any],
        preprocessing: Preprocessing | None,
        *,
        name: str,
    ) -> None:
        check_options(options)
        self.session = session
        self.shape = tuple(int(n) for n in options["shape"])
        self.n_features = self.shape[-1]
        self.preprocessing = preprocessing
        self._input = self.input_name = str(options["input"])
        # The steps the graph itself runs in front of the network (``_in_one_graph``), if any
        self.in_graph: Preprocessing | None = None
        roles: dict[str, str] = dict(options["outputs"])
        inputs = {i.name: i for i in session.get_inputs()}
        if list(inputs) != [self._input]:
            raise InvalidModel(
                f"{name}: the graph's inputs are {', '.join(inputs) or 'none'}, metadata names "
                f"one input {self._input!r}"
            )
        graph_input = inputs[self._input]
        self._dtype = _DTYPES.get(graph_input.type)
        if self._dtype is None:
            raise InvalidModel(f"{name}: input {self._input} is {graph_input.type}, not float")
        fixed = list(graph_input.shape[1:])
        if len(fixed) != len(self.shape) or any(
            isinstance(d, int) and d != n for d, n in zip(fixed, self.shape, strict=False)
        ):
            raise InvalidModel(
                f"{name}: the graph takes {graph_input.shape}, metadata says "
                f"[batch, {', '.join(map(str, self.shape))}]"
            )
        names = [o.name for o in session.get_outputs()]
        missing = [v for v in roles.values() if v not in names]
        if missing:
            raise InvalidModel(
                f"{name}: the graph has no output {missing[0]!r} (it has {', '.join(names)})"
            )
        self._fetch = [roles[MAIN]] + ([roles[VALUE]] if VALUE in roles else [])
        self.has_value = VALUE in roles
        # Compiled once: each request's preprocessing is a few numpy calls (exactly ``apply``)
        steps = preprocessing if preprocessing is not None else Preprocessing(())
        self._prepare = steps.compiled(self._dtype)
        self._steps = bool(steps.steps)
        # One input's outputs: their shapes and types are a ``OneInput``'s buffers
        self._one_shape = (1, *self.shape)
        self._zeros = np.zeros(self._one_shape, dtype=self._dtype)
        self._examples = self._session_run(self._zeros)
        self.n_outputs = int(self._examples[0].reshape(1, -1).shape[1])
        self._threads = threading.local()  # each thread's ``OneInput`` (see ``run``)

    @classmethod
    def from_bytes(cls, data: bytes, spec: MemberSpec, files: Mapping[str, bytes]) -> OnnxMember:
        """The member from its graph bytes and, when its options name one, the version's
        preprocessing artifact (``files``: every artifact of the version, each verified)."""
        runtime()  # imported before the probe forks: the child shares it instead
        try:
            check_options(spec.options)
            preprocessing = None
            pre = spec.options.get("preprocessing")
            if pre is not None:
                if pre not in files:
                    raise InvalidModel(f"{spec.artifact}: {pre} is not an artifact of the version")
                preprocessing = Preprocessing.from_json(files[pre], spec.options["shape"])
            session = safe_load(new_session, data, what=spec.artifact, check=run_probe_input)
            member = cls(session, spec.options, preprocessing, name=spec.artifact)
            if preprocessing is not None:
                return _in_one_graph(member, data, spec) or member
            return member
        except InvalidModel as exc:
            if exc.message.startswith(spec.artifact):  # the probe's verdict names it already
                raise
            raise InvalidModel(f"{spec.artifact}: {exc.message}") from None
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            raise InvalidModel(f"{spec.artifact}: {exc}") from None

    def run(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The main output (n, outputs) and the critic's value (n,) or None, both float64."""
        n = len(rows)
        if n == 1:  # a warm request's one input: the thread's bound buffers
            one = getattr(self._threads, "one", None) or self._bind()
            if self._steps:
                self._prepare(rows.reshape(self._one_shape), one.input)
            else:  # nothing to compute: the row is the input (cast where the graph's is float)
                np.copyto(one.flat_input, rows)
            try:
                one.run()
            except Exception as exc:  # onnxruntime's own error types: a fault of the graph
                raise _failed(exc) from None
            return one.results()
        results = self._session_run(self._prepare(rows.reshape(n, *self.shape)))
        main = results[0].astype(np.float64).reshape(n, -1)
        value = results[1].astype(np.float64).reshape(n) if len(results) > 1 else None
        return main, value

    def _session_run(self, x: np.ndarray) -> list[np.ndarray]:
        try:
            return list(self.session.run(self._fetch, {self._input: x}))
        except Exception as exc:  # onnxruntime's own error types: a fault of the graph
            raise _failed(exc) from None

    def _bind(self) -> OneInput:
        one = OneInput(self.session, self._input, self._zeros, self._fetch, self._examples)
        self._threads.one = one
        return one

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self.run(rows)[0]


def _in_one_graph(member: OnnxMember, data: bytes, spec: MemberSpec) -> OnnxMember | None:
    """``member`` with its preprocessing run by onnxruntime in front of the graph
    (``graph_prefix``): a warm request's numpy calls become a few nodes of the same run.
    Only where, on ``_check_inputs``, the nodes alone compute ``Preprocessing.apply``'s very
    float64 numbers and the new graph answers as the member does, bit for bit (one input at
    a time and as a batch); None otherwise (the member keeps its numpy steps)."""
    steps = member.preprocessing
    assert steps is not None
    try:
        model = prefixed(data, member.input_name, steps)
        alone = steps_only(steps, member.shape)
        if model is None or alone is None:
            return None
        options = {**spec.options, "input": INPUT, "preprocessing": None}
        inputs = _check_inputs(steps, member.shape)
        shaped = inputs.reshape(len(inputs), *member.shape)
        session = safe_load(new_session, model, what=spec.artifact, check=run_probe_input)
        fused = OnnxMember(session, options, None, name=spec.artifact)
        # The same nodes as the probed graph's first ones: no probe of their own
        computed = new_session(alone).run([OUTPUT], {INPUT: shaped})[0]
        same = _identical(computed, steps.apply(shaped)) and all(
            all(map(_identical, member.run(rows), fused.run(rows)))
            for rows in (inputs, inputs[:1], inputs[-1:])
        )
    except Exception as exc:  # onnxruntime's own errors too: the steps stay in numpy
        logger.warning("%s: preprocessing stays in numpy (%s)", spec.artifact, exc)
        return None
    if not same:
        logger.warning(
            "%s: preprocessing stays in numpy (the graph's numbers differ)", spec.artifact
        )
        return None
    fused.in_graph = steps
    return fused


def _check_inputs(preprocessing: Preprocessing, shape: tuple[int, ...]) -> np.ndarray:
    """Flat inputs (rows of ``prod(shape)``) that a prefixed graph must answer exactly as the
    numpy steps do: where the network was trained (the steps' inverse of standard normal
    draws) and the edges: zeros, large values and values whose scaling overflows. Only what
    a request may send (finite numbers: the graphs prefixed take no missing values), since
    these run in the serving process, not in the probe child."""
    rng = np.random.default_rng(0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # a step of 0
        typical = preprocessing.inverse(rng.standard_normal((64, *shape)) * 3).reshape(64, -1)
    typical[~np.isfinite(typical)] = 0.0
    width = typical.shape[1]
    edges = np.array([0.0, 1e6, -1e6, 1e300, -1e300, 5e-324])
    every = np.repeat(edges[:, None], width, axis=1)  # each edge value in every column
    mixed = np.resize(edges, (len(edges), width))  # and beside the others
    return np.vstack([typical, every, mixed])


def _identical(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and a.tobytes() == b.tobytes()


def _failed(exc: Exception) -> InvalidModel:
    return InvalidModel(f"onnxruntime failed: {' '.join(str(exc).split())[:300]}")


class OneInput:
    """One thread's ``IOBinding`` of a session for one input at a time: the input and output
    buffers are bound once, so a run hands onnxruntime no dict to read nor arrays to allocate
    (measured: a policy's run 6.0 us against 8.5 for ``session.run``, a GRU's 136 against
    139.5). Per thread, since a binding is not to be shared while it runs; a batch uses
    ``session.run``."""

    def __init__(
        self, session: Any, name: str, input_: np.ndarray, fetch: list[str], examples: list[Any]
    ) -> None:
        """``input_``: an input of the graph's shape and type; ``examples``: its outputs, in
        ``fetch`` order (their shapes and types are the buffers')."""
        self.input = np.zeros_like(input_)
        self.flat_input = self.input.reshape(1, -1)  # the same buffer, as a row arrives
        self.outputs = [np.empty_like(np.asarray(e)) for e in examples]
        binding = session.io_binding()
        binding.bind_cpu_input(name, self.input)
        for output, buffer in zip(fetch, self.outputs, strict=True):
            binding.bind_output(
                output, "cpu", 0, buffer.dtype.type, list(buffer.shape), buffer.ctypes.data
            )
        self._binding = binding
        # The call ``InferenceSession.run_with_iobinding`` makes (``self._sess.run_with_
        # iobinding(binding._iobinding, options)``), made directly: a Python frame less.
        # Run options made once: without them onnxruntime builds default ones on every run
        # (measured: a policy's run 4.5 us instead of 5.2, 5.8 instead of 7.0 between requests).
        options = runtime().RunOptions()
        native, bound = getattr(session, "_sess", None), getattr(binding, "_iobinding", None)
        if native is not None and bound is not None:
            self._run: Any = partial(native.run_with_iobinding, bound, options)
        else:  # another onnxruntime's layout: its public method
            self._run = partial(session.run_with_iobinding, binding, options)
        # One input's answer as ``OnnxMember.run`` returns it: float64 copies, shaped (1, k)
        # and (1,), made from the buffers after each run.
        main, *value = self.outputs
        self._main_shape = (1, main.size) if main.shape != (1, main.size) else None
        self._value = value[0] if value else None

    def run(self) -> list[np.ndarray]:
        """The outputs for what ``input`` holds now (the bound buffers, overwritten by the
        next run)."""
        self._run()
        return self.outputs

    def results(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The last run's main output (1, k) and critic value (1,) or None, as float64
        copies (the buffers are reused by the next run)."""
        main = self.outputs[0].astype(np.float64)
        if self._main_shape is not None:  # a graph that answers (1,) or (1, k, 1)
            main = main.reshape(self._main_shape)
        value = self._value
        return main, None if value is None else value.astype(np.float64).reshape(1)
