"""One fitted estimator -> one member (bytes + spec), with what the checks need to compare it
against the original: the original's own output function and its split points.

LightGBM (``LGBMClassifier``, ``LGBMRegressor``, ``Booster``) becomes LightGBM text. XGBoost
(``XGBClassifier``, ``XGBRegressor``) and scikit-learn's tree ensembles (RandomForest,
ExtraTrees, GradientBoosting, HistGradientBoosting; classifier and regressor) become Treelite
models with the recipe in ``tickerserve.members.treelite``; Treelite keeps every node's cover
(``sum_hess``), which the explanations need. An XGBoost member also keeps XGBoost's own model
file (``.xgboost.ubj``), with which the function answers batches at XGBoost's own speed.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tickerserve.members.kinds import LIGHTGBM, TREELITE, MemberSpec
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.probe import probe_rows
from tickerserve.storage.bundle import CLASSIFICATION, REGRESSION

SKLEARN_FORESTS = (
    "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
    "ExtraTreesRegressor",
)  # fmt: skip
SKLEARN_BOOSTING = ("GradientBoostingClassifier", "GradientBoostingRegressor")
SKLEARN_HIST = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
XGBOOST = ("XGBClassifier", "XGBRegressor")
LIGHTGBM_TYPES = ("LGBMClassifier", "LGBMRegressor", "Booster")
SUPPORTED = (*LIGHTGBM_TYPES, *XGBOOST, *SKLEARN_FORESTS, *SKLEARN_BOOSTING, *SKLEARN_HIST)
TREELITE_SUFFIX = ".treelite"
# XGBoost's own model file beside its Treelite model: the function answers batches with
# XGBoost's own library from it (members.xgboost_api).
XGBOOST_SUFFIX = ".xgboost.ubj"
# XGBoost objectives whose link we reproduce (Treelite's postprocessor names -> ours).
_XGB_LINKS = {"identity": "identity", "sigmoid": "sigmoid", "softmax": "softmax",
              "exponential": "exponential"}  # fmt: skip


@dataclass
class ConvertedMember:
    """A member ready for a bundle, and how to ask the original the same question."""

    spec: MemberSpec
    data: bytes
    task: str
    classes: list[Any] | None  # the original's own class values, in output order
    n_features: int
    trained_names: list[str] | None
    accepts_missing: bool
    reference: Callable[[np.ndarray], np.ndarray]  # original outputs, (n_rows, n_outputs)
    splits: dict[int, list[float]] = field(default_factory=dict)  # feature -> thresholds
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    extra_files: dict[str, bytes] = field(default_factory=dict)  # other artifacts it uses


def family(obj: Any) -> str:
    """``lightgbm``, ``xgboost`` or ``sklearn`` for a supported estimator, else ''."""
    module = type(obj).__module__.split(".")[0]
    name = type(obj).__name__
    if module == "lightgbm" and name in LIGHTGBM_TYPES:
        return "lightgbm"
    if module == "xgboost" and name in XGBOOST:
        return "xgboost"
    if module == "sklearn" and name in (*SKLEARN_FORESTS, *SKLEARN_BOOSTING, *SKLEARN_HIST):
        return "sklearn"
    return ""


def describe(obj: Any) -> str:
    return f"{type(obj).__module__.split('.')[0]}.{type(obj).__name__}"


def convert_estimator(
    obj: Any, *, stem: str, name: str = "", weight: float = 1.0
) -> ConvertedMember:
    """Convert a fitted estimator; ``stem`` names its artifact (``stem.txt`` / ``.treelite``)."""
    kind = family(obj)
    if not kind:
        raise NotConvertible(
            f"{describe(obj)} cannot be served: supported are "
            "LightGBM (LGBMClassifier, LGBMRegressor, Booster), XGBoost (XGBClassifier, "
            "XGBRegressor) and scikit-learn RandomForest, ExtraTrees, GradientBoosting and "
            "HistGradientBoosting (classifier or regressor)"
        )
    _check_fitted(obj)
    converted = {"lightgbm": _lightgbm, "xgboost": _xgboost, "sklearn": _sklearn}[kind](
        obj, stem, name, weight
    )
    converted.hyperparameters = _params(obj)
    return converted


def _check_fitted(obj: Any) -> None:
    name = type(obj).__name__
    fitted = {
        "Booster": lambda: True,
        "LGBMClassifier": lambda: getattr(obj, "fitted_", False),
        "LGBMRegressor": lambda: getattr(obj, "fitted_", False),
    }.get(name)
    if fitted is not None:
        ok = fitted()
    elif name in XGBOOST:
        try:
            obj.get_booster()
            ok = True
        except Exception:
            ok = False
    else:
        ok = hasattr(obj, "n_features_in_")
    if not ok:
        raise NotConvertible(f"the {name} is not fitted")


def _quiet(fn: Callable[[], Any]) -> Any:
    with warnings.catch_warnings():
        # Version-skew and feature-name warnings are moot: the probe comparison decides.
        warnings.simplefilter("ignore")
        return fn()


# -- LightGBM -------------------------------------------------------------------------------
def _lightgbm(obj: Any, stem: str, name: str, weight: float) -> ConvertedMember:
    import lightgbm as lgb

    from tickerserve.members.lightgbm import CLASSIFIER_OBJECTIVES, REGRESSION_OBJECTIVES

    booster = obj if isinstance(obj, lgb.Booster) else obj.booster_
    text = booster.model_to_string()
    objective = text.split("objective=", 1)[1].split(None, 1)[0] if "objective=" in text else ""
    if objective in CLASSIFIER_OBJECTIVES:
        task = CLASSIFICATION
    elif objective in REGRESSION_OBJECTIVES:
        task = REGRESSION
    else:
        raise NotConvertible(f"LightGBM objective {objective!r} is neither a classifier nor a "
                             "regressor tickerserve serves")  # fmt: skip
    classes: list[Any] | None = None
    if task == CLASSIFICATION:
        outputs = booster.num_model_per_iteration()
        if isinstance(obj, lgb.LGBMClassifier):
            classes = list(np.asarray(obj.classes_))
        else:  # a raw Booster answers for classes 0..k-1
            classes = list(range(2 if outputs == 1 else outputs))

        def reference(rows: np.ndarray) -> np.ndarray:
            if isinstance(obj, lgb.LGBMClassifier):
                return np.asarray(_quiet(lambda: obj.predict_proba(rows)), dtype=np.float64)
            raw = np.asarray(booster.predict(rows))
            return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw

    else:

        def reference(rows: np.ndarray) -> np.ndarray:
            fn = obj.predict if not isinstance(obj, lgb.Booster) else booster.predict
            return np.asarray(_quiet(lambda: fn(rows)), dtype=np.float64).reshape(-1, 1)

    trained = list(booster.feature_name())
    names = None if all(n.startswith("Column_") for n in trained) else trained
    spec = MemberSpec(f"{stem}.txt", weight, LIGHTGBM, name, {}, type(obj).__name__)
    return ConvertedMember(
        spec, text.encode(), task, classes, booster.num_feature(), names, True, reference,
        _lightgbm_splits(booster),
    )  # fmt: skip


def _lightgbm_splits(booster: Any) -> dict[int, list[float]]:
    splits: dict[int, list[float]] = {}

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            threshold = node.get("threshold")
            if isinstance(threshold, int | float):
                splits.setdefault(int(node["split_feature"]), []).append(float(threshold))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return splits


# -- XGBoost --------------------------------------------------------------------------------
def _xgboost(obj: Any, stem: str, name: str, weight: float) -> ConvertedMember:
    import treelite

    booster = obj.get_booster()
    raw_json = booster.save_raw("json").decode()
    model = treelite.frontend.from_xgboost_json(raw_json)
    header = _header(model)
    classifier = type(obj).__name__ == "XGBClassifier"
    link = _XGB_LINKS.get(header["postprocessor"])
    if link is None or header.get("sigmoid_alpha", 1.0) != 1.0:
        raise NotConvertible(
            f"XGBoost objective {_xgb_objective(raw_json)!r} (output transform "
            f"{header['postprocessor']!r}) is not supported"
        )
    if header["num_target"] != 1 or header["leaf_vector_shape"] != [1, 1]:
        raise NotConvertible("multi-target or vector-leaf XGBoost models are not supported")
    width = int(header["num_class"][0])
    n_trees = int(model.num_tree)
    if header["class_id"] != [t % width for t in range(n_trees)]:
        raise NotConvertible(
            "XGBoost trees are not one per class per round (num_parallel_tree > 1?); not supported"
        )
    task = CLASSIFICATION if classifier else REGRESSION
    classes = list(np.asarray(obj.classes_)) if classifier else None
    if classifier and link not in ("sigmoid", "softmax"):
        raise NotConvertible(f"an XGBClassifier with output transform {link!r} gives no "
                             "probabilities")  # fmt: skip
    if not classifier and link == "softmax":
        raise NotConvertible("an XGBRegressor with a softmax objective is not supported")
    base = _xgb_base_margin(model, booster, width, header["base_scores"][:width], raw_json)
    own_model = f"{stem}{XGBOOST_SUFFIX}"
    options = {
        "margin": "float32_in_order",
        "link": link,
        "margin_width": width,
        "base_margin": [float(b) for b in base],
        "source": "xgboost",
        "xgboost_model": own_model,
    }

    def reference(rows: np.ndarray) -> np.ndarray:
        if classifier:
            return np.asarray(_quiet(lambda: obj.predict_proba(rows)), dtype=np.float64)
        return np.asarray(_quiet(lambda: obj.predict(rows)), dtype=np.float64).reshape(-1, 1)

    names = booster.feature_names
    spec = MemberSpec(f"{stem}{TREELITE_SUFFIX}", weight, TREELITE, name, options,
                      type(obj).__name__)  # fmt: skip
    return ConvertedMember(
        spec, bytes(model.serialize_bytes()), task, classes, int(model.num_feature),
        list(names) if names else None, True, reference, _xgb_splits(raw_json),
        extra_files={own_model: bytes(booster.save_raw("ubj"))},
    )  # fmt: skip


def _xgb_base_margin(
    model: Any, booster: Any, width: int, base_scores: list[float], raw_json: str
) -> np.ndarray:
    """XGBoost's base margin as the float32 XGBoost itself starts from.

    Treelite computes it in double (e.g. logit(base_score)); XGBoost in float32, which can be
    one or two ulps away. Among Treelite's value and its float32 neighbours, take the one
    with which the trees summed in order give XGBoost's own margins on sample rows.
    """
    from treelite import gtil

    rows = probe_rows(int(model.num_feature), _xgb_splits(raw_json), rows=128)
    rows = rows.astype(np.float32)
    theirs = np.asarray(booster.inplace_predict(rows, predict_type="margin"), dtype=np.float32)
    theirs = theirs.reshape(len(rows), width)
    per_tree = np.asarray(gtil.predict_per_tree(model, rows, nthread=1), dtype=np.float32)
    trees = per_tree.reshape(len(rows), -1, width)
    chosen = np.asarray(base_scores, dtype=np.float32)
    for k in range(width):
        start = np.float32(base_scores[k])
        below, above = start, start
        candidates = [start]
        for _ in range(3):
            below = np.nextafter(below, np.float32(-np.inf))
            above = np.nextafter(above, np.float32(np.inf))
            candidates += [below, above]
        for candidate in candidates:
            steps = np.concatenate(
                [np.full((len(rows), 1), candidate, dtype=np.float32), trees[:, :, k]], axis=1
            )
            if np.array_equal(np.cumsum(steps, axis=1, dtype=np.float32)[:, -1], theirs[:, k]):
                chosen[k] = candidate
                break
    return chosen


def _xgb_objective(raw_json: str) -> str:
    try:
        return str(json.loads(raw_json)["learner"]["objective"]["name"])
    except (KeyError, ValueError):
        return "unknown"


def _xgb_splits(raw_json: str) -> dict[int, list[float]]:
    splits: dict[int, list[float]] = {}
    trees = json.loads(raw_json)["learner"]["gradient_booster"]["model"]["trees"]
    for tree in trees:
        for left, feature, value in zip(
            tree["left_children"], tree["split_indices"], tree["split_conditions"], strict=True
        ):
            if left != -1:
                splits.setdefault(int(feature), []).append(float(value))
    return splits


# -- scikit-learn ---------------------------------------------------------------------------
def _sklearn(obj: Any, stem: str, name: str, weight: float) -> ConvertedMember:
    import treelite.sklearn

    kind = type(obj).__name__
    classifier = kind.endswith("Classifier")
    if kind in SKLEARN_BOOSTING and obj.init_ not in ("zero", None) and not _dummy(obj.init_):
        raise NotConvertible(f"{kind} with a custom init estimator is not supported")
    try:
        model = treelite.sklearn.import_model(obj)
    except Exception as exc:
        raise NotConvertible(f"Treelite cannot read this {kind}: {_short(exc)}") from None
    header = _header(model)
    classes = list(np.asarray(obj.classes_)) if classifier else None
    n_classes = len(classes) if classes is not None else 0
    if kind in SKLEARN_FORESTS and classifier and not _normalizes_leaves():
        _store_class_fractions(model, obj, n_classes)
    if kind in SKLEARN_FORESTS:
        link = "identity"  # the averaged leaf values are the probabilities (or the value)
    elif classifier:
        link = "sigmoid" if n_classes == 2 else "softmax"
    else:
        link = "identity"
    width = int(np.prod(header["leaf_vector_shape"])) if kind in SKLEARN_FORESTS else None
    if width is None:
        width = 1 if not classifier or n_classes == 2 else n_classes
    if header["num_target"] != 1:
        raise NotConvertible(f"multi-output {kind} is not supported")
    options: dict[str, Any] = {
        "margin": "native",
        "link": link,
        "margin_width": width,
        "source": "sklearn",
    }
    if kind not in SKLEARN_HIST:
        options["round_inputs"] = "float32"  # scikit-learn's trees compare float32 inputs

    def reference(rows: np.ndarray) -> np.ndarray:
        if classifier:
            return np.asarray(_quiet(lambda: obj.predict_proba(rows)), dtype=np.float64)
        return np.asarray(_quiet(lambda: obj.predict(rows)), dtype=np.float64).reshape(-1, 1)

    names = getattr(obj, "feature_names_in_", None)
    n_features = int(obj.n_features_in_)
    accepts_missing = _accepts_missing(reference, n_features)
    spec = MemberSpec(f"{stem}{TREELITE_SUFFIX}", weight, TREELITE, name, options, kind)
    return ConvertedMember(
        spec, bytes(model.serialize_bytes()), CLASSIFICATION if classifier else REGRESSION,
        classes, n_features, None if names is None else [str(n) for n in names],
        accepts_missing, reference, _sklearn_splits(obj),
    )  # fmt: skip


def _normalizes_leaves() -> bool:
    """Whether this scikit-learn's trees divide a leaf's class values by their sum when they
    answer probabilities: up to 1.3 they stored counts and did; from 1.4 they store the
    fractions themselves and answer them as they are."""
    import sklearn

    major, minor = (int(part) for part in sklearn.__version__.split(".")[:2])
    return (major, minor) < (1, 4)


def _store_class_fractions(model: Any, forest: Any, n_classes: int) -> None:
    """Give each leaf the class fractions scikit-learn answers, bit for bit: Treelite divides
    them by their sum again, which moves the last bit where that sum is not exactly 1."""
    for t, tree in enumerate(forest.estimators_):
        inner = tree.tree_
        leaves = inner.children_left < 0
        fractions = np.asarray(inner.value, dtype=np.float64)[leaves, 0, :n_classes]
        accessor = model.get_tree_accessor(t)
        if accessor.get_field("leaf_vector").size != fractions.size:
            raise NotConvertible("Treelite laid this forest's leaves out unexpectedly")
        accessor.set_field("leaf_vector", np.ascontiguousarray(fractions.ravel()))


def _dummy(init: Any) -> bool:
    return type(init).__name__ in ("DummyClassifier", "DummyRegressor")


def _accepts_missing(reference: Callable[[np.ndarray], np.ndarray], n_features: int) -> bool:
    try:
        reference(np.full((1, n_features), np.nan))
    except ValueError:
        return False
    return True


def _sklearn_splits(obj: Any) -> dict[int, list[float]]:
    splits: dict[int, list[float]] = {}
    kind = type(obj).__name__
    if kind in SKLEARN_HIST:
        for predictors in obj._predictors:
            for predictor in predictors:
                nodes = predictor.nodes
                for node in nodes[~nodes["is_leaf"].astype(bool)]:
                    splits.setdefault(int(node["feature_idx"]), []).append(
                        float(node["num_threshold"])
                    )
        return splits
    trees = np.asarray(obj.estimators_).ravel()
    for tree in trees:
        inner = tree.tree_
        for feature, threshold in zip(inner.feature, inner.threshold, strict=True):
            if feature >= 0:
                splits.setdefault(int(feature), []).append(float(threshold))
    return splits


# -- shared ---------------------------------------------------------------------------------
_HEADER_FIELDS = ("num_target", "num_class", "leaf_vector_shape", "class_id", "postprocessor",
                  "sigmoid_alpha", "base_scores")  # fmt: skip


def _header(model: Any) -> dict[str, Any]:
    """Treelite's model-level fields, as plain Python values."""
    accessor = model.get_header_accessor()
    header: dict[str, Any] = {}
    for name in _HEADER_FIELDS:
        value = accessor.get_field(name)
        header[name] = value if isinstance(value, str) else np.asarray(value).tolist()
    for name in ("num_target", "sigmoid_alpha"):
        header[name] = header[name][0]
    return header


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _params(obj: Any) -> dict[str, Any]:
    get_params = getattr(obj, "get_params", None)
    params = get_params() if callable(get_params) else dict(getattr(obj, "params", {}) or {})
    return {str(k): _jsonable(v) for k, v in params.items() if _scalar(v)}


def _scalar(value: Any) -> bool:
    if isinstance(value, float | np.floating):
        return math.isfinite(float(value))
    return value is None or isinstance(value, str | int | bool | np.integer)


def _jsonable(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
