"""Treelite members: XGBoost and scikit-learn tree ensembles, pickle-free.

The publisher imports the estimator with Treelite's frontends and stores
``Model.serialize_bytes()``; the function restores it through ``treelite_api`` (Treelite's
C library; serving never imports the ``treelite`` package, nor scipy with it) and reproduces
each library's own arithmetic exactly:

- scikit-learn (``margin: native``): raw margins in float64 (forest averages, boosting sums
  from the initial estimate), then scikit-learn's own link (``sigmoid`` / ``softmax``) in
  float64 (``links``: the C library's ``exp`` for the sigmoid, as scipy's ``expit``; numpy's
  ``exp`` for the softmax, as scikit-learn's). Forests and classic gradient boosting first
  round inputs to float32, as scikit-learn does before it walks a tree
  (``round_inputs: float32``).
- XGBoost (``margin: float32_in_order``): XGBoost adds tree outputs one by one in float32,
  starting from its base margin; the trees added in that order give XGBoost's margins bit for
  bit, and the link is applied in float32 like XGBoost's.

Who walks the trees: the model's node arrays (``treelite_forest``) feed the fast engines of
``tree_engines`` (onnxruntime graphs, and XGBoost's own library for batches when the member
carries XGBoost's model file, option ``xgboost_model``). They are checked against Treelite's
own walker (GTIL) on probe rows when the member loads, and GTIL keeps serving any model they
cannot reproduce (HistGradientBoosting, categorical splits) or that fails the check. Versions
published before the fast engines existed are served by them too: nothing is republished.

The recipe lives in the member's ``options`` in ``metadata.json`` (covered by its sha256).
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from tickerserve.errors import InvalidModel
from tickerserve.layout import validate_artifact_name
from tickerserve.members import xgboost_api
from tickerserve.members.forest import Forest, probe_rows
from tickerserve.members.kinds import (
    MARGIN,
    PROBABILITY,
    TREELITE,
    VALUE,
    Contributions,
    Unexplainable,
    expected_outputs,
)
from tickerserve.members.links import expit, softmax
from tickerserve.members.row_split import vcpus
from tickerserve.members.safe_load import safe_load
from tickerserve.members.tree_engines import LIBXGBOOST_MIN_ROWS, TreeEngine, build_engine
from tickerserve.members.tree_shap import Paths, enumerate_paths, shap_values
from tickerserve.members.treelite_api import NativeModel, Predictor, TreeliteError, library
from tickerserve.members.treelite_forest import Unreadable, forest_from_treelite
from tickerserve.members.xgboost_api import NativeBooster

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tickerserve.members.kinds import MemberSpec

logger = logging.getLogger(__name__)

MARGINS = ("native", "float32_in_order")
LINKS = ("identity", "sigmoid", "softmax", "exponential")
ROUNDING = (None, "float32")


def load_treelite(data: bytes) -> NativeModel:
    """Bytes of ``Model.serialize_bytes()`` -> Treelite model; anything else ``InvalidModel``."""
    try:
        return NativeModel.deserialize_bytes(data)
    except (TreeliteError, ValueError, OSError) as exc:
        raise InvalidModel(f"not a Treelite model: {str(exc).splitlines()[0][:200]}") from None


def predict_probe_row(model: NativeModel) -> None:
    """One prediction of a row of zeros on one thread (in a probe child; see safe_load)."""
    Predictor(model, "raw").predict(np.zeros((1, model.num_feature), dtype=_dtype(model)))


def _dtype(model: NativeModel) -> type[np.floating[Any]]:
    return np.float32 if model.input_type == "float32" else np.float64


def check_options(options: dict[str, Any], task: str, n_classes: int) -> None:
    """Structural checks of a Treelite member's recipe; raise ``ValueError``."""
    margin, link = options.get("margin"), options.get("link")
    if margin not in MARGINS:
        raise ValueError(f"treelite margin must be one of {', '.join(MARGINS)}")
    if link not in LINKS:
        raise ValueError(f"treelite link must be one of {', '.join(LINKS)}")
    if options.get("round_inputs") not in ROUNDING:
        raise ValueError("treelite round_inputs must be float32 or absent")
    width = options.get("margin_width")
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError("treelite margin_width must be a positive integer")
    wanted = {"sigmoid": 1, "softmax": n_classes}.get(link)
    if task == "regression":
        if width != 1 or link == "softmax":
            raise ValueError("a regression member has one margin and no softmax")
    elif link == "identity" and width != n_classes:
        raise ValueError(f"an identity-link classifier must give {n_classes} probabilities")
    elif link == "exponential":
        raise ValueError("exponential link is for regression")
    elif wanted is not None and width != wanted:
        raise ValueError(f"a {link} classifier member needs {wanted} margin(s), not {width}")
    if margin == "float32_in_order":
        base = options.get("base_margin")
        if not isinstance(base, list) or len(base) != width:
            raise ValueError(f"float32_in_order needs base_margin with {width} value(s)")
        if not all(isinstance(b, float | int) and math.isfinite(b) for b in base):
            raise ValueError("base_margin values must be finite numbers")
    own = options.get("xgboost_model")
    if own is not None:
        if margin != "float32_in_order" or not isinstance(own, str):
            raise ValueError("xgboost_model names an artifact, for an XGBoost member")
        validate_artifact_name(own)


class TreeliteMember:
    """A Treelite model plus the recipe that reproduces its original library's outputs."""

    kind = TREELITE
    trained_names: list[str] | None = None  # Treelite keeps no feature names

    def __init__(
        self, model: NativeModel, options: dict[str, Any], *, task: str, n_classes: int,
        name: str, booster: NativeBooster | None = None,
    ) -> None:  # fmt: skip
        check_options(options, task, n_classes)
        self.n_features = int(model.num_feature)
        self.n_outputs = expected_outputs(task, n_classes)
        self.task = task
        self.link = str(options["link"])
        self._width = int(options["margin_width"])
        self._in_order = options["margin"] == "float32_in_order"
        self._round = options.get("round_inputs") == "float32"
        self._dtype = _dtype(model)
        self._base = np.asarray(options.get("base_margin") or [0.0], dtype=np.float32)
        self._gtil: Predictor | None = Predictor(
            model, "score_per_tree" if self._in_order else "raw"
        )
        self._model: NativeModel | None = model
        n_trees = int(model.num_tree)
        if self._in_order and n_trees % self._width:
            raise InvalidModel(f"{name}: {n_trees} trees do not split into {self._width} outputs")
        probe = self._raw(np.zeros((1, self.n_features)))
        columns = probe.shape[1] if self._in_order else probe[0].size
        expected = n_trees if self._in_order else self._width
        if columns != expected:
            raise InvalidModel(f"{name}: the model gives {columns} outputs, metadata {expected}")
        self.forest: Forest | None = None
        self.engine: TreeEngine | None = None
        self._booster: NativeBooster | None = None
        self.resident_bytes = 0  # what it holds beyond its artifact (the engine's arrays)
        self._path_table: Paths | None = None  # TreeSHAP's paths, on the first explanation
        self._paths_lock = threading.Lock()
        self._fast_engines(options, name, booster)

    def _fast_engines(
        self, options: dict[str, Any], name: str, booster: NativeBooster | None
    ) -> None:
        """Serve through the fast engines when they reproduce GTIL on probe rows; then Treelite
        itself is let go (the engines and the node arrays are all that is used)."""
        assert self._model is not None
        try:
            forest = forest_from_treelite(self._model, options)
            engine = build_engine(forest)
        except (Unreadable, TreeliteError) as exc:
            logger.info("%s: served by Treelite's GTIL (%s)", name, exc)
            return
        rows = probe_rows(forest)
        expected = self._gtil_predict(rows)
        if not _same(self._outputs(engine.margins(rows)), expected, forest.family):
            logger.warning("%s: the fast engine differs from GTIL; served by GTIL", name)
            return
        if booster is not None and self.link in _XGBOOST_OWN_LINKS:
            if np.array_equal(self._xgboost_outputs(booster, rows), expected):
                self._booster = booster
                booster.set_threads(vcpus())  # XGBoost splits a batch's rows itself
            else:
                logger.warning("%s: libxgboost differs from the member's trees; not used", name)
        self.forest, self.engine = forest, engine
        # The node arrays, and about twice as much in onnxruntime's own copy of the trees
        # (measured: a 354,000-node forest's arrays 18 MiB, its session 32-36 MiB).
        self.resident_bytes = 3 * forest.nbytes
        self._gtil = self._model = None
        _return_freed_memory()  # building the graph freed far more than the engine keeps

    @classmethod
    def from_bytes(
        cls, data: bytes, spec: MemberSpec, *, task: str, n_classes: int,
        extra: Mapping[str, bytes] | None = None,
    ) -> TreeliteMember:  # fmt: skip
        """The member from its Treelite artifact (``extra``: the bundle's other artifacts,
        where XGBoost's own model file may be)."""
        # Loaded here, before the probe forks: the child then shares the library instead of
        # loading it only to exit, which would add to a cold start.
        library()
        try:
            # Treelite is native code too: a forked child restores and predicts first.
            model = safe_load(load_treelite, data, what=spec.artifact, check=predict_probe_row)
            booster = _xgboost_booster(spec, extra or {})
            return cls(model, spec.options, task=task, n_classes=n_classes, name=spec.artifact,
                       booster=booster)  # fmt: skip
        except InvalidModel as exc:
            if exc.message.startswith(spec.artifact):  # the probe's verdict names it already
                raise
            raise InvalidModel(f"{spec.artifact} is {exc.message}") from None
        except (ValueError, TreeliteError) as exc:
            raise InvalidModel(f"{spec.artifact}: {exc}") from None

    @property
    def engine_name(self) -> str:
        """Which engine answers batches (shown by GET /health and the benchmarks)."""
        if self._booster is not None:
            return "libxgboost"
        return self.engine.name if self.engine is not None else "treelite gtil"

    def predict(self, rows: np.ndarray) -> np.ndarray:
        if self._booster is not None and len(rows) >= LIBXGBOOST_MIN_ROWS:
            return self._xgboost_outputs(self._booster, rows)
        if self.engine is not None:
            return self._outputs(self.engine.margins(rows))
        return self._gtil_predict(rows)

    @property
    def space(self) -> str:
        """Where its explanations add up: a forest's probabilities or values, a boosted
        model's margins, or a value where the link is the identity."""
        if self.forest is not None and self.forest.family == "forest":
            return PROBABILITY if self.task == "classification" else VALUE
        return VALUE if self.task == "regression" and self.link == "identity" else MARGIN

    def explain(self, rows: np.ndarray) -> Contributions:
        """Exact path-dependent TreeSHAP over the stored trees (``tree_shap``), in
        ``space``; the paths are enumerated on the first call."""
        paths = self._paths()
        values = np.zeros((len(rows), paths.width, paths.n_features))
        for i, row in enumerate(rows):
            values[i] = shap_values(paths, row).T
        return Contributions(self.space, paths.expected.copy(), values)

    def _paths(self) -> Paths:
        with self._paths_lock:
            if self._path_table is None:
                if self.forest is None:
                    raise Unexplainable(
                        "this tree model is served by Treelite's own walker (e.g. "
                        "HistGradientBoosting), which keeps no paths to explain"
                    )
                try:
                    self._path_table = enumerate_paths(self.forest)
                except ValueError as exc:
                    raise Unexplainable(str(exc)) from None
            return self._path_table

    def margins(self, rows: np.ndarray) -> np.ndarray:
        """The original library's margins (before its link), float64 (n_rows, width)."""
        if self.engine is not None:
            return np.asarray(self.engine.margins(rows), dtype=np.float64)
        raw = self._raw(self._rounded(rows))
        if self._in_order:
            return self._sum_in_order(raw).astype(np.float64)
        return raw.reshape(rows.shape[0], self._width)

    def _outputs(self, margins: np.ndarray) -> np.ndarray:
        if self._in_order:
            return _link32(margins, self.link).astype(np.float64)
        return _link64(margins, self.link)

    def _xgboost_outputs(self, booster: NativeBooster, rows: np.ndarray) -> np.ndarray:
        """XGBoost's own transformed outputs, as its scikit-learn wrapper returns them (a
        binary classifier's ``[1 - p, p]`` in float32)."""
        values = booster.values(rows)
        if self.task == "classification" and self.link == "sigmoid":
            one = np.float32(1.0)
            values = np.column_stack([one - values[:, 0], values[:, 0]])
        return values.astype(np.float64)

    def _gtil_predict(self, rows: np.ndarray) -> np.ndarray:
        raw = self._raw(self._rounded(rows))
        if self._in_order:
            return self._outputs(self._sum_in_order(raw))
        return _link64(raw.reshape(rows.shape[0], self._width), self.link)

    def _rounded(self, rows: np.ndarray) -> np.ndarray:
        if self._round:  # what scikit-learn does to X before it walks a tree
            return rows.astype(np.float32).astype(np.float64)
        return rows

    def _raw(self, rows: np.ndarray) -> np.ndarray:
        assert self._gtil is not None
        try:
            return self._gtil.predict(np.ascontiguousarray(rows, dtype=self._dtype))
        except TreeliteError as exc:
            raise InvalidModel(f"treelite prediction failed: {exc}") from None

    def _sum_in_order(self, per_tree: np.ndarray) -> np.ndarray:
        """XGBoost's margins: base margin, then each tree's output added in float32, in tree
        order (tree ``t`` feeds output ``t % width``), exactly as its CPU predictor does."""
        n_rows = per_tree.shape[0]
        trees = per_tree.reshape(n_rows, -1, self._width).astype(np.float32, copy=False)
        base = np.broadcast_to(self._base, (n_rows, 1, self._width))
        # cumsum adds strictly left to right (unlike sum's pairwise summation).
        steps = np.concatenate([base, trees], axis=1)
        return np.cumsum(steps, axis=1, dtype=np.float32)[:, -1, :]


# XGBoost's own transformations that the member's links reproduce (libxgboost may answer).
_XGBOOST_OWN_LINKS = frozenset({"identity", "sigmoid", "softmax", "exponential"})


def _xgboost_booster(spec: MemberSpec, extra: Mapping[str, bytes]) -> NativeBooster | None:
    """XGBoost's own model for batches, when the member carries one and libxgboost is here;
    a file libxgboost cannot load leaves the member on its exact onnxruntime graph."""
    artifact = spec.options.get("xgboost_model")
    if not artifact or artifact not in extra or not xgboost_api.available():
        return None
    try:
        return safe_load(
            xgboost_api.load_booster, extra[artifact], what=artifact,
            check=xgboost_api.predict_probe_row,
        )  # fmt: skip
    except (InvalidModel, xgboost_api.XGBoostError) as exc:
        logger.warning("%s: XGBoost's model is not used: %s", spec.artifact, exc)
        return None


def _c_malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_MALLOC_TRIM = _c_malloc_trim()


def _return_freed_memory() -> None:
    """Give the memory freed on the heap back to the system (glibc keeps it otherwise: a
    500-tree forest's graph is built and parsed in some hundred MiB the engine then no longer
    needs, which would stay in the function's RSS)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _same(mine: np.ndarray, gtil: np.ndarray, family: str) -> bool:
    """The fast engine against GTIL: identical, except gradient boosting, where GTIL adds the
    initial score after the trees (scikit-learn, and the fast engine, before them)."""
    if mine.shape != gtil.shape:
        return False
    if family == "boosting":
        return bool(np.allclose(mine, gtil, rtol=1e-12, atol=1e-12))
    return bool(np.array_equal(mine, gtil))


def _link64(margin: np.ndarray, link: str) -> np.ndarray:
    """scikit-learn's links, in float64."""
    if link == "identity":
        return margin
    if link == "sigmoid":
        p = expit(margin[:, 0])  # scikit-learn's binomial loss: scipy.special.expit
        return np.column_stack([1.0 - p, p])
    if link == "softmax":  # scikit-learn's extmath.softmax, operation for operation
        return softmax(margin, axis=1)
    return np.exp(margin)


def _c_expf() -> Any:
    """The C library's ``expf``, the very function XGBoost's links call."""
    try:
        expf = ctypes.CDLL("libm.so.6").expf
    except (OSError, AttributeError):  # not glibc: fall back to numpy (within one ulp)
        return None
    expf.restype, expf.argtypes = ctypes.c_float, [ctypes.c_float]
    return expf


_EXPF = _c_expf()


def _exp32(x: np.ndarray) -> np.ndarray:
    # numpy's float32 exp (and even float64 exp rounded to float32) differs from C's expf in
    # the last bit for a few inputs; XGBoost calls expf, so we do too: a few calls per row.
    if _EXPF is None:
        return np.exp(x.astype(np.float64)).astype(np.float32)
    values = x.ravel().tolist()
    out = np.fromiter(map(_EXPF, values), dtype=np.float32, count=len(values))
    return out.reshape(x.shape)


def _link32(margin: np.ndarray, link: str) -> np.ndarray:
    """XGBoost's links, in float32 as its predictor computes them."""
    one = np.float32(1.0)
    if link == "identity":
        return margin
    if link == "sigmoid":
        p = one / (one + _exp32(-margin[:, 0]))
        return np.column_stack([one - p, p])
    if link == "softmax":
        shifted = _exp32(margin - margin.max(axis=1, keepdims=True))
        total = np.zeros(len(margin), dtype=np.float64)
        for column in shifted.T:  # left to right in double, as XGBoost's Softmax adds them
            total += column
        return shifted / total.astype(np.float32)[:, None]
    return _exp32(margin)
