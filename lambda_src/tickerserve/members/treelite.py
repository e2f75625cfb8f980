"""Treelite members: XGBoost and scikit-learn tree ensembles, pickle-free.

The publisher imports the estimator with Treelite's frontends and stores
``Model.serialize_bytes()``; the function restores it and predicts with GTIL (Treelite's own
tree walker: a shared library in a 3 MB wheel, no compiler at serve time), called through
``treelite_api`` so that serving never imports the ``treelite`` package (and scipy with it).
Why Treelite (measured when it was chosen; see the README's "Bring your models"): one small
library reads XGBoost and every scikit-learn tree ensemble, answers one row in tens of
microseconds, and lets us reproduce each library's own arithmetic exactly:

- scikit-learn (``margin: native``): GTIL's raw margins in float64 (forest averages, boosting
  sums with the initial estimate), then scikit-learn's own link (``sigmoid`` / ``softmax``) in
  float64 (``links``: the C library's ``exp`` for the sigmoid, as scipy's ``expit``; numpy's
  ``exp`` for the softmax, as scikit-learn's). Forests and classic gradient boosting first
  round inputs to float32, as scikit-learn does before it walks a tree
  (``round_inputs: float32``).
- XGBoost (``margin: float32_in_order``): XGBoost adds tree outputs one by one in float32,
  starting from its base margin; GTIL's per-tree outputs summed in that order give XGBoost's
  margins bit for bit, and the link is applied in float32 like XGBoost's.

The recipe lives in the member's ``options`` in ``metadata.json`` (covered by its sha256).
"""

from __future__ import annotations

import ctypes
import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from tickerserve.errors import InvalidModel
from tickerserve.members.kinds import TREELITE, expected_outputs
from tickerserve.members.links import expit, softmax
from tickerserve.members.safe_load import safe_load
from tickerserve.members.treelite_api import NativeModel, Predictor, TreeliteError, library

if TYPE_CHECKING:
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


class TreeliteMember:
    """A Treelite model plus the recipe that reproduces its original library's outputs."""

    kind = TREELITE
    trained_names: list[str] | None = None  # Treelite keeps no feature names

    def __init__(
        self, model: NativeModel, options: dict[str, Any], *, task: str, n_classes: int,
        name: str,
    ) -> None:  # fmt: skip
        check_options(options, task, n_classes)
        self.model = model
        self.n_features = int(model.num_feature)
        self.n_outputs = expected_outputs(task, n_classes)
        self._link = str(options["link"])
        self._width = int(options["margin_width"])
        self._in_order = options["margin"] == "float32_in_order"
        self._round = options.get("round_inputs") == "float32"
        self._dtype = _dtype(model)
        self._base = np.asarray(options.get("base_margin") or [0.0], dtype=np.float32)
        self._gtil = Predictor(model, "score_per_tree" if self._in_order else "raw")
        n_trees = int(model.num_tree)
        if self._in_order and n_trees % self._width:
            raise InvalidModel(f"{name}: {n_trees} trees do not split into {self._width} outputs")
        probe = self._raw(np.zeros((1, self.n_features)))
        columns = probe.shape[1] if self._in_order else probe[0].size
        expected = n_trees if self._in_order else self._width
        if columns != expected:
            raise InvalidModel(f"{name}: the model gives {columns} outputs, metadata {expected}")

    @classmethod
    def from_bytes(
        cls, data: bytes, spec: MemberSpec, *, task: str, n_classes: int
    ) -> TreeliteMember:
        # Loaded here, before the probe forks: the child then shares the library instead of
        # loading it only to exit, which would add to a cold start.
        library()
        try:
            # Treelite is native code too: a forked child restores and predicts first.
            model = safe_load(load_treelite, data, what=spec.artifact, check=predict_probe_row)
            return cls(model, spec.options, task=task, n_classes=n_classes, name=spec.artifact)
        except InvalidModel as exc:
            if exc.message.startswith(spec.artifact):  # the probe's verdict names it already
                raise
            raise InvalidModel(f"{spec.artifact} is {exc.message}") from None
        except (ValueError, TreeliteError) as exc:
            raise InvalidModel(f"{spec.artifact}: {exc}") from None

    def predict(self, rows: np.ndarray) -> np.ndarray:
        if self._round:  # what scikit-learn does to X before it walks a tree
            rows = rows.astype(np.float32).astype(np.float64)
        raw = self._raw(rows)
        if self._in_order:
            margin = self._sum_in_order(raw)
            return _link32(margin, self._link).astype(np.float64)
        return _link64(raw.reshape(rows.shape[0], self._width), self._link)

    def _raw(self, rows: np.ndarray) -> np.ndarray:
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
