"""A converted network as a bundle, checked against its original before anything is written.

``export_onnx`` writes a torch module as ONNX with the TorchScript exporter (opset 17, a
dynamic batch axis): it needs only the ``onnx`` package, works with the torch versions teams
trained with, and gives one self-contained file (the dynamo exporter needs onnxscript and, by
default, writes the weights beside the graph, which cannot be loaded from bytes).

``network_bundle`` puts the graph, its preprocessing and the ``network`` description
together; ``check_network`` loads that bundle exactly as the function does (``LoadedModel``:
numpy preprocessing, onnxruntime on one thread) and compares it with the original on generated
inputs (at least ``CHECK_INPUTS``): the largest difference relative to the largest output of
the original must stay within ``RELATIVE_TOLERANCE``, and a classifier's or discrete policy's
choice must agree wherever the original's top two are not tied.
"""

from __future__ import annotations

import math
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tickerserve.errors import TickerserveError
from tickerserve.members.kinds import ONNX, MemberSpec
from tickerserve.members.network import NetworkSpec
from tickerserve.members.onnx import MAIN, VALUE
from tickerserve.members.preprocessing import FILE_NAME as PREPROCESSING_FILE
from tickerserve.members.preprocessing import Preprocessing
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.assemble import PLACEHOLDER_VERSION
from tickerserve.storage.bundle import CLASSIFICATION, Bundle, BundleMetadata, make_bundle
from tickerserve.storage.registry import utc_now

ONNX_FILE = "model.onnx"
CHECK_INPUTS = 256
RELATIVE_TOLERANCE = 1e-5
OPSET = 17
# Original answers for check inputs: the main output (n, outputs) and the critic (n,) or None.
Original = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class Check:
    """What the comparison with the original measured."""

    inputs: int
    max_abs_diff: float
    max_relative_diff: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.inputs,
            "max_abs_diff": self.max_abs_diff,
            "max_relative_diff": self.max_relative_diff,
            "relative_tolerance": RELATIVE_TOLERANCE,
        }


def export_onnx(
    module: Any, shape: Sequence[int], *, input_name: str, output_names: Sequence[str]
) -> bytes:
    """``module`` (torch, taking ``(batch, *shape)``) as ONNX bytes with a dynamic batch."""
    import torch

    example = torch.zeros((2, *shape), dtype=torch.float32)  # batch 2: no batch-1 special case
    axes = {name: {0: "batch"} for name in (input_name, *output_names)}
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as folder:
        # The TorchScript exporter's deprecation notice, and nn.GRU's note on batch sizes
        # (every batch size is checked below, through onnxruntime).
        warnings.simplefilter("ignore")
        path = Path(folder) / ONNX_FILE
        try:
            torch.onnx.export(
                module,
                (example,),
                str(path),
                input_names=[input_name],
                output_names=list(output_names),
                dynamic_axes=axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        except Exception as exc:
            text = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            raise NotConvertible(f"torch.onnx.export failed: {text}") from None
        return path.read_bytes()


def network_bundle(
    *,
    model: str,
    graph: bytes,
    input_name: str,
    outputs: dict[str, str],
    network: NetworkSpec,
    task: str,
    classes: list[str],
    feature_names: list[str],
    selected_features: list[int] | None,
    preprocessing: Preprocessing | None,
    model_type: str,
    estimator: str,
    asset_class: str | None = None,
    created_at: str = "",
    metrics: dict[str, float] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
) -> Bundle:
    """The version's files and metadata (validated, not yet checked against an original)."""
    options: dict[str, Any] = {
        "input": input_name,
        "shape": list(network.shape),
        "outputs": dict(outputs),
    }
    files = {ONNX_FILE: graph}
    if preprocessing is not None and preprocessing.steps:
        options["preprocessing"] = PREPROCESSING_FILE
        files[PREPROCESSING_FILE] = preprocessing.to_json()
    metadata = BundleMetadata(
        model=model,
        version=PLACEHOLDER_VERSION,
        feature_names=list(feature_names),
        classes=list(classes),
        artifacts={},
        members=[MemberSpec(ONNX_FILE, kind=ONNX, options=options, estimator=estimator)],
        selected_features=selected_features,
        model_type=model_type,
        created_at=created_at or utc_now(),
        asset_class=asset_class,
        metrics=dict(metrics or {}),
        hyperparameters=dict(hyperparameters or {}),
        training=dict(training or {}),
        source=dict(source or {}),
        task=task,
        # A missing value reaches the network as NaN unless the preprocessing fills it.
        accepts_missing=preprocessing is not None and preprocessing.fills_missing,
        network=network,
    )
    try:
        return make_bundle(metadata, files)
    except TickerserveError as exc:
        raise NotConvertible(exc.message) from None


def load(bundle: Bundle) -> Any:
    """The bundle as the function loads it (``LoadedModel``)."""
    from tickerserve.serving.model import LoadedModel

    try:
        return LoadedModel(bundle.metadata, bundle.files)
    except TickerserveError as exc:
        raise NotConvertible(exc.message) from None


def check_network(bundle: Bundle, inputs: np.ndarray, original: Original) -> Check:
    """Compare the bundle with ``original`` on ``inputs`` (raw, flat: ``(n, prod(shape))``);
    refuse it unless they agree. Records the figures in the bundle's ``source.probe``."""
    loaded = load(bundle)
    meta = bundle.metadata
    mine = loaded.predict(inputs)
    mine_main = np.asarray(mine.outputs, dtype=np.float64).reshape(len(inputs), -1)
    theirs_main, theirs_value = original(inputs)
    theirs_main = np.asarray(theirs_main, dtype=np.float64).reshape(len(inputs), -1)
    absolute, relative = compare("the network's output", mine_main, theirs_main)
    if meta.task == CLASSIFICATION:
        agree(mine_main, theirs_main)
    if meta.network is not None and meta.network.value:
        if mine.value is None or theirs_value is None:
            raise NotConvertible("the critic's value is missing from one side of the check")
        a, r = compare(
            "the critic's value",
            mine.value.reshape(-1, 1),
            np.asarray(theirs_value, dtype=np.float64).reshape(-1, 1),
        )
        absolute, relative = max(absolute, a), max(relative, r)
    # One input on its own answers what it answered in the batch (batch 1 is its own shape).
    single = loaded.predict(inputs[:1]).outputs
    compare("a single input", np.asarray(single).reshape(1, -1), mine_main[:1])
    check = Check(len(inputs), absolute, relative)
    meta.source["probe"] = check.to_dict()  # metadata.json is serialized when written
    return check


def compare(what: str, mine: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    """(max |difference|, that relative to the original's largest |output|); refuse above
    the tolerance (elementwise relative errors mean nothing near zero)."""
    if mine.shape != theirs.shape:
        raise NotConvertible(f"{what}: converted shape {mine.shape}, original {theirs.shape}")
    if not (np.isfinite(mine).all() and np.isfinite(theirs).all()):
        raise NotConvertible(f"{what}: non-finite outputs on the check inputs")
    absolute = float(np.max(np.abs(mine - theirs))) if mine.size else 0.0
    scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
    relative = absolute / scale if scale > 0 else absolute
    if not relative <= RELATIVE_TOLERANCE:
        raise NotConvertible(
            f"{what} does not match the original: max difference {absolute:.3g} "
            f"({relative:.3g} relative, above {RELATIVE_TOLERANCE:g}) on {len(mine)} inputs"
        )
    return absolute, relative


def agree(mine: np.ndarray, theirs: np.ndarray, gap: float = 1e-6) -> None:
    """The same choice (class, action) wherever the original's top two are not tied."""
    if theirs.shape[1] < 2:
        return
    ordered = np.sort(theirs, axis=1)
    clear = ordered[:, -1] - ordered[:, -2] > gap
    differ = (mine.argmax(axis=1) != theirs.argmax(axis=1)) & clear
    if differ.any():
        raise NotConvertible(
            f"the converted network chooses differently from the original on "
            f"{int(differ.sum())} of {len(mine)} inputs"
        )


def check_inputs(
    shape: Sequence[int],
    preprocessing: Preprocessing | None,
    *,
    rows: int = CHECK_INPUTS,
    missing: bool = False,
    seed: int = 0,
) -> np.ndarray:
    """Generated inputs, flat ``(rows, prod(shape))``: normal draws in the network's own input
    space (what the preprocessing produces; standard deviation 2), mapped back to raw values;
    a few at +-12 (past a VecNormalize clip of 10), and missing values where the preprocessing
    fills them. Rounded to float32, the precision the originals compute in."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(rows, *shape))
    extreme = max(1, rows // 32)
    z[:extreme] = rng.choice([-12.0, 12.0], size=(extreme, *shape))
    x = z if preprocessing is None else preprocessing.inverse(z)
    x = x.astype(np.float32).astype(np.float64)
    if missing:
        x[rng.random(x.shape) < 0.05] = np.nan
    return x.reshape(rows, math.prod(shape))


def roles(value: bool) -> dict[str, str]:
    """The graph's output names by role (as ``export_onnx`` names them)."""
    return {MAIN: "output", VALUE: "value"} if value else {MAIN: "output"}
