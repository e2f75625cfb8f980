"""ONNX members: networks (GRU sequence models, PPO policies, a team's own exports) run by
onnxruntime, without torch.

The member's bytes are an ONNX model (``model.onnx``) in the version folder, sha256-chained
like every artifact. Its ``options`` in ``metadata.json`` name the graph's input and outputs::

    {"input": "x", "shape": [60, 20], "outputs": {"main": "y", "value": "value"},
     "preprocessing": "preprocessing.json"}

``shape`` is one request's input without the batch axis; ``main`` is the answer (class
probabilities of a classifier or a discrete policy, a regressor's values, a box policy's
clipped action), ``value`` an optional critic value. ``preprocessing`` names the JSON steps
(``members.preprocessing``) applied in numpy before the graph, exactly as the original applied
them (compiled once at load: a few numpy calls a request). Rows arrive flat
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
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tickerserve.errors import InvalidModel
from tickerserve.members.kinds import ONNX
from tickerserve.members.onnx_engine import one_thread_session, runtime
from tickerserve.members.preprocessing import Preprocessing
from tickerserve.members.safe_load import safe_load

if TYPE_CHECKING:
    from tickerserve.members.kinds import MemberSpec

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
        self._input = str(options["input"])
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
        # One input's outputs: their shapes and types are a ``OneInput``'s buffers
        self._zeros = np.zeros((1, *self.shape), dtype=self._dtype)
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
            return cls(session, spec.options, preprocessing, name=spec.artifact)
        except InvalidModel as exc:
            if exc.message.startswith(spec.artifact):  # the probe's verdict names it already
                raise
            raise InvalidModel(f"{spec.artifact}: {exc.message}") from None
        except (ValueError, TypeError, json.JSONDecodeError) as exc:
            raise InvalidModel(f"{spec.artifact}: {exc}") from None

    def run(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The main output (n, outputs) and the critic's value (n,) or None, both float64."""
        n = len(rows)
        x = rows.reshape(n, *self.shape)
        if n == 1:  # a warm request's one input: the thread's bound buffers
            one = getattr(self._threads, "one", None) or self._bind()
            self._prepare(x, one.input)
            try:
                results = one.run()
            except Exception as exc:  # onnxruntime's own error types: a fault of the graph
                raise _failed(exc) from None
        else:
            results = self._session_run(self._prepare(x))
        main = results[0].astype(np.float64).reshape(n, -1)  # a copy: the buffers are reused
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
        self.outputs = [np.empty_like(np.asarray(e)) for e in examples]
        binding = session.io_binding()
        binding.bind_cpu_input(name, self.input)
        for output, buffer in zip(fetch, self.outputs, strict=True):
            binding.bind_output(
                output, "cpu", 0, buffer.dtype.type, list(buffer.shape), buffer.ctypes.data
            )
        self._binding = binding
        self._session = session

    def run(self) -> list[np.ndarray]:
        """The outputs for what ``input`` holds now (the bound buffers, overwritten by the
        next run)."""
        self._session.run_with_iobinding(self._binding)
        return self.outputs
