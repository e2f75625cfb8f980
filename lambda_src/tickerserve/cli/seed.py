"""Turn a model source folder into a native bundle, on the publisher's machine.

Two kinds of source folder:

- native: ``metadata.json`` with ``feature_names`` and ``classes`` plus the LightGBM text
  model(s) it lists (``model.txt``); artifacts are re-hashed and checked against the
  sha256 the metadata records, if any.
- seed: a pickled ``LGBMClassifier`` or ``Booster`` (``model.joblib`` / ``model.pkl``, or a
  pickled dict with ``model`` / ``label_encoder`` / ``feature_names``) or a ``model.txt``
  without native metadata; ``label_encoder.pkl``; ``feature_names.json`` (full ordered
  list) and/or ``feature_names_selected.json`` (the names the model uses, or indices);
  optional seed ``metadata.json`` (metrics, training dates, hyperparameters).

A seed is converted to ``model.txt`` and refused unless the converted model, loaded exactly
as the runtime loads it, predicts the same probabilities (``np.allclose``, rtol 1e-7,
atol 1e-10) and the same labels as the original on a probe set built from the model's own
feature ranges. Unpickling runs arbitrary code: only convert files you trust.
"""

from __future__ import annotations

import json
import math
import pickle
import re
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tickerserve.bundle import Bundle, BundleMetadata, Member, make_bundle
from tickerserve.cli.errors import Refused
from tickerserve.errors import TickerserveError
from tickerserve.layout import METADATA_FILE, MODEL_FILE
from tickerserve.registry import utc_now
from tickerserve.store import sha256_hex

PLACEHOLDER_VERSION = "0.0.0"  # the real version is chosen at publish time
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
PROBE_ROWS = 256
RTOL, ATOL = 1e-7, 1e-10
_AUTO_NAME = re.compile(r"^Column_\d+$")
_METRIC_HINTS = (
    "accuracy",
    "f1",
    "precision",
    "recall",
    "auc",
    "loss",
    "score",
    "sharpe",
    "return",
    "win_rate",
    "mcc",
    "kappa",
)


@dataclass
class Converted:
    """A bundle ready to publish plus what the conversion found out."""

    bundle: Bundle
    kind: str  # "native" or "seed"
    estimator: str
    probe_rows: int = 0
    max_abs_diff: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        meta = self.bundle.metadata
        return {
            "kind": self.kind,
            "estimator": self.estimator,
            "features": len(meta.used_features),
            "classes": meta.classes,
            "probe_rows": self.probe_rows,
            "max_abs_diff": self.max_abs_diff,
            "warnings": self.warnings,
        }


def load_source(
    path: Path, *, model: str, asset_class: str | None = None, probe_rows: int = PROBE_ROWS
) -> Converted:
    """Read a native bundle folder or convert a seed folder; refuse anything doubtful."""
    if not path.is_dir():
        raise Refused(f"{path}: not a folder")
    pickles = _pickles(path)
    native_meta = _native_metadata(path)
    if native_meta is not None and not pickles:
        return _load_native(path, native_meta, model=model, asset_class=asset_class)
    if not pickles and not (path / MODEL_FILE).is_file():
        raise Refused(
            f"{path}: no model found (expected {MODEL_FILE} with a native metadata.json, "
            "or a seed model.joblib / model.pkl)"
        )
    return _convert_seed(path, pickles, model=model, asset_class=asset_class, rows=probe_rows)


# -- native bundles ------------------------------------------------------------------------
def _native_metadata(path: Path) -> dict[str, Any] | None:
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        return None
    raw = _read_json(meta_path)
    native = isinstance(raw, dict) and "feature_names" in raw and "classes" in raw
    has_model = "ensemble" in raw or "artifacts" in raw or (path / MODEL_FILE).is_file()
    return raw if native and has_model else None


def _load_native(
    path: Path, raw: dict[str, Any], *, model: str, asset_class: str | None
) -> Converted:
    ensemble = raw.get("ensemble") or {"members": [{"artifact": MODEL_FILE}]}
    try:
        names = list(raw.get("artifacts") or {}) or [m["artifact"] for m in ensemble["members"]]
    except (TypeError, KeyError) as exc:
        raise Refused(f"{path / METADATA_FILE}: invalid ensemble members ({exc})") from None
    files: dict[str, bytes] = {}
    for name in names:
        file = path / str(name)
        if not file.is_file():
            raise Refused(f"{path}: {name} is listed in metadata.json but missing")
        files[name] = file.read_bytes()
        recorded = (raw.get("artifacts") or {}).get(name)
        if isinstance(recorded, dict) and recorded.get("sha256") not in (
            None,
            sha256_hex(files[name]),
        ):
            raise Refused(f"{path}: {name} does not match the sha256 recorded in metadata.json")
    fields = dict(raw, model=model, version=PLACEHOLDER_VERSION, artifacts={})
    if asset_class is not None:
        fields["asset_class"] = asset_class
    try:
        metadata = BundleMetadata.from_dict(fields | {"artifacts": _artifact_stub(files)})
    except (ValueError, TypeError, KeyError) as exc:
        raise Refused(f"{path / METADATA_FILE}: {exc}") from None
    bundle = make_bundle(metadata, files)
    _load_checked(bundle, path)
    return Converted(bundle, "native", metadata.model_type)


def _artifact_stub(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    return {n: {"size": len(d), "sha256": sha256_hex(d)} for n, d in files.items()}


def _load_checked(bundle: Bundle, path: Path) -> Any:
    from tickerserve.model import LoadedModel

    try:
        return LoadedModel(bundle.metadata, bundle.files)
    except TickerserveError as exc:
        raise Refused(f"{path}: {exc.message}") from None


# -- seed folders --------------------------------------------------------------------------
@dataclass
class _Seed:
    """What a seed folder holds once unpickled."""

    estimator: Any
    booster: Any
    encoder: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # name -> sha256 of the original


def _pickles(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in PICKLE_SUFFIXES)


def _is_encoder_file(p: Path) -> bool:
    return "encoder" in p.stem.lower()


def _convert_seed(
    path: Path, pickles: list[Path], *, model: str, asset_class: str | None, rows: int
) -> Converted:
    notes: list[str] = []
    seed = _read_seed(path, pickles, notes)
    seed_meta = _seed_metadata(path)
    full, selected = _feature_names(path, seed, seed_meta)
    used = full if selected is None else [full[i] for i in selected]
    n_features = int(seed.booster.num_feature())
    if n_features != len(used):
        raise Refused(
            f"{path}: the model expects {n_features} features but the feature names list "
            f"{len(used)}"
        )
    _check_trained_names(path, seed.booster, used)
    labels, output_labels = _class_labels(path, seed, seed_meta, notes)
    model_str = seed.booster.model_to_string()
    files = {MODEL_FILE: model_str.encode()}
    metadata = BundleMetadata(
        model=model,
        version=PLACEHOLDER_VERSION,
        feature_names=full,
        classes=labels,
        artifacts={},
        members=[Member(MODEL_FILE)],
        selected_features=selected,
        model_type="lightgbm",
        created_at=_created_at(seed_meta),
        asset_class=asset_class,
        metrics=_metrics(seed_meta, notes),
        hyperparameters=_hyperparameters(seed, seed_meta),
        training=_training(seed_meta),
        source={
            "kind": "seed",
            "estimator": type(seed.estimator).__name__,
            "files": seed.files,
            "converted_at": utc_now(),
        },
    )
    try:
        bundle = make_bundle(metadata, files)
    except TickerserveError as exc:
        raise Refused(f"{path}: {exc.message}") from None
    loaded = _load_checked(bundle, path)
    probe = probe_set(model_str, n_features, rows)
    diff = _compare(path, seed, loaded, probe, labels, output_labels)
    bundle.metadata.source["probe"] = {"rows": len(probe), "max_abs_diff": diff}
    bundle = make_bundle(bundle.metadata, files)
    return Converted(bundle, "seed", type(seed.estimator).__name__, len(probe), diff, notes)


def _read_seed(path: Path, pickles: list[Path], notes: list[str]) -> _Seed:
    model_files = [p for p in pickles if not _is_encoder_file(p)]
    encoder_files = [p for p in pickles if _is_encoder_file(p)]
    preferred = [p for p in model_files if p.stem == "model"]
    if len(preferred) == 1:
        model_files, ignored = preferred, [p for p in model_files if p not in preferred]
    else:
        ignored = []
    if len(model_files) > 1:
        names = ", ".join(p.name for p in model_files)
        raise Refused(f"{path}: several model files ({names}); keep one or name it model.joblib")
    for p in ignored:
        notes.append(f"ignored {p.name} (not part of the bundle; inputs are sent unscaled)")
    if len(encoder_files) > 1:
        raise Refused(
            f"{path}: several label encoders ({', '.join(p.name for p in encoder_files)})"
        )
    files: dict[str, str] = {}
    if model_files:
        obj = _unpickle(model_files[0])
        files[model_files[0].name] = sha256_hex(model_files[0].read_bytes())
    else:
        from tickerserve.members.lightgbm import load_booster_safely

        text = path / MODEL_FILE
        try:
            obj = load_booster_safely(text.read_bytes(), MODEL_FILE)
        except TickerserveError as exc:
            raise Refused(f"{text}: {exc.message}") from None
        files[MODEL_FILE] = sha256_hex(text.read_bytes())
    extras: dict[str, Any] = {}
    if isinstance(obj, dict):
        extras = obj
        obj = next(
            (obj[k] for k in ("model", "classifier", "estimator", "booster") if k in obj), None
        )
        if obj is None:
            raise Refused(f"{path}: the pickled dict has no 'model' entry")
    estimator, booster = _booster_of(path, obj)
    encoder = extras.get("label_encoder") or extras.get("encoder")
    if encoder_files:
        encoder = _unpickle(encoder_files[0])
        files[encoder_files[0].name] = sha256_hex(encoder_files[0].read_bytes())
    if encoder is not None and not hasattr(encoder, "classes_"):
        raise Refused(f"{path}: the label encoder has no classes_ (got {type(encoder).__name__})")
    return _Seed(estimator, booster, encoder, extras, files)


def _booster_of(path: Path, obj: Any) -> tuple[Any, Any]:
    import lightgbm as lgb

    if isinstance(obj, lgb.Booster):
        return obj, obj
    if isinstance(obj, lgb.LGBMClassifier):
        try:
            return obj, obj.booster_
        except Exception:
            raise Refused(f"{path}: the LGBMClassifier is not fitted") from None
    if isinstance(obj, lgb.LGBMModel):
        raise Refused(
            f"{path}: {type(obj).__name__} is not a classifier; only LGBMClassifier or Booster"
        )
    raise Refused(
        f"{path}: the pickle holds a {type(obj).__module__}.{type(obj).__name__}; "
        "only LightGBM LGBMClassifier or Booster can be converted"
    )


def _unpickle(file: Path) -> Any:
    import joblib

    with warnings.catch_warnings():
        # Version-skew warnings are moot: the probe comparison decides whether it converts.
        warnings.simplefilter("ignore")
        try:
            return joblib.load(file)
        except Exception as exc:
            first = exc
        try:
            with file.open("rb") as handle:
                return pickle.load(handle)
        except Exception:
            raise Refused(f"cannot unpickle {file}: {_short(first)}") from None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise Refused(f"{file}: not valid JSON ({_short(exc)})") from None


def _seed_metadata(path: Path) -> dict[str, Any]:
    file = path / METADATA_FILE
    if not file.is_file():
        return {}
    raw = _read_json(file)
    if not isinstance(raw, dict):
        raise Refused(f"{file}: must be a JSON object")
    return raw


# -- feature names -------------------------------------------------------------------------
_NAME_KEYS = ("feature_names", "features", "all_features", "names", "columns")
_SELECTED_KEYS = ("selected_features", "feature_names_selected", "selected_feature_names")
_INDEX_KEYS = ("selected_indices", "selected_feature_indices", "feature_indices", "indices")


def _feature_names(
    path: Path, seed: _Seed, meta: dict[str, Any]
) -> tuple[list[str], list[int] | None]:
    """The full ordered feature list and, if the model uses a subset, its indices."""
    full: list[str] | None = None
    chosen: list[str] | None = None
    indices: list[int] | None = None
    sources = [("metadata.json", meta), ("the pickled dict", seed.extras)]
    for label, src in sources:
        full = full or _names_in(src, _NAME_KEYS, label)
        picked = _first(src, _SELECTED_KEYS)
        if _all_ints(picked):
            indices = indices or [int(i) for i in picked]
        else:
            chosen = chosen or _names_in(src, _SELECTED_KEYS, label)
        indices = indices or _ints_in(src, _INDEX_KEYS, label)
    # Dedicated files win over what metadata.json says.
    full_file = path / "feature_names.json"
    if full_file.is_file():
        raw = _read_json(full_file)
        full = _as_names(raw if isinstance(raw, list) else _first(raw, _NAME_KEYS), full_file)
        if isinstance(raw, dict):
            indices = _ints_in(raw, _INDEX_KEYS, full_file.name) or indices
    for name in ("feature_names_selected.json", "selected_features.json"):
        file = path / name
        if file.is_file():
            raw = _read_json(file)
            value = raw if isinstance(raw, list) else _first(raw, (*_SELECTED_KEYS, *_NAME_KEYS))
            if _all_ints(value):
                indices = [int(i) for i in value]
            else:
                chosen = _as_names(value, file)
            if isinstance(raw, dict):
                indices = _ints_in(raw, _INDEX_KEYS, name) or indices
    for file in sorted(path.glob("*indices*.json")):
        indices = _as_ints(_read_json(file), file)
    if full is None and chosen is None:
        trained = list(seed.booster.feature_name())
        if trained and not all(_AUTO_NAME.match(n) for n in trained):
            return trained, None
        raise Refused(f"{path}: no feature names (add feature_names.json)")
    if full is None:
        assert chosen is not None
        if indices is not None:
            raise Refused(f"{path}: selected feature indices given without the full feature_names")
        return chosen, None
    return full, _selection(path, full, chosen, indices)


def _selection(
    path: Path, full: list[str], chosen: list[str] | None, indices: list[int] | None
) -> list[int] | None:
    if len(set(full)) != len(full):
        raise Refused(f"{path}: feature_names contains duplicates")
    if indices is not None:
        bad = [i for i in indices if not 0 <= i < len(full)]
        if bad:
            raise Refused(
                f"{path}: selected index {bad[0]} is outside the {len(full)} feature names"
            )
        if chosen is not None and [full[i] for i in indices] != chosen:
            raise Refused(f"{path}: the selected feature names disagree with the selected indices")
    elif chosen is not None:
        unknown = [n for n in chosen if n not in full]
        if unknown:
            raise Refused(f"{path}: selected feature {unknown[0]!r} is not in feature_names")
        indices = [full.index(n) for n in chosen]
    if indices is None or indices == list(range(len(full))):
        return None
    return indices


def _first(src: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(src, dict):
        for key in keys:
            if key in src:
                return src[key]
    return None


def _all_ints(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value)
    )


def _names_in(src: Any, keys: tuple[str, ...], label: str) -> list[str] | None:
    value = _first(src, keys)
    return None if value is None or _all_ints(value) else _as_names(value, label)


def _ints_in(src: Any, keys: tuple[str, ...], label: object) -> list[int] | None:
    value = _first(src, keys)
    return None if value is None else _as_ints(value, label)


def _as_names(value: Any, label: object) -> list[str]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise Refused(f"{label}: feature names must be a non-empty list of strings")
    return list(value)


def _as_ints(value: Any, label: object) -> list[int]:
    if isinstance(value, dict):
        value = _first(value, _INDEX_KEYS)
    if not _all_ints(value):
        raise Refused(f"{label}: selected indices must be a non-empty list of integers")
    return [int(i) for i in value]


def _check_trained_names(path: Path, booster: Any, used: list[str]) -> None:
    """A model trained on named columns must have been trained on exactly these names."""
    trained = list(booster.feature_name())
    if not trained or all(_AUTO_NAME.match(n) for n in trained):
        return
    # LightGBM replaces spaces in column names with underscores when it trains.
    expected = [n.replace(" ", "_") for n in used]
    for i, (got, want) in enumerate(zip(trained, expected, strict=True)):
        if got != want:
            raise Refused(
                f"{path}: feature {i} is {got!r} in the model but {used[i]!r} in the feature names"
            )


# -- class labels --------------------------------------------------------------------------
_CLASS_KEYS = ("classes", "class_labels", "label_classes", "labels", "strategies", "class_names")


def _class_labels(
    path: Path, seed: _Seed, meta: dict[str, Any], notes: list[str]
) -> tuple[list[str], Any]:
    """Labels in output order, and the original's own label values for the probe comparison."""
    import lightgbm as lgb

    n_outputs = int(seed.booster.num_model_per_iteration())
    n_classes = 2 if n_outputs == 1 else n_outputs
    encoder_classes = None if seed.encoder is None else list(np.asarray(seed.encoder.classes_))
    listed = _first(meta, _CLASS_KEYS) or _first(seed.extras, _CLASS_KEYS)
    if isinstance(seed.estimator, lgb.LGBMClassifier):
        own = list(np.asarray(seed.estimator.classes_))
        if len(own) != n_classes:
            raise Refused(
                f"{path}: the classifier lists {len(own)} classes but outputs {n_classes}"
            )
        if all(_is_int(c) for c in own):
            mapping = encoder_classes if encoder_classes is not None else _label_list(listed)
            if mapping is None:
                notes.append("no label encoder: class labels are the classifier's integers")
                return [str(int(c)) for c in own], own
            bad = [int(c) for c in own if not 0 <= int(c) < len(mapping)]
            if bad:
                raise Refused(
                    f"{path}: unknown class label {bad[0]}: the label encoder knows "
                    f"{len(mapping)} classes"
                )
            return [str(mapping[int(c)]) for c in own], own
        if encoder_classes is not None:
            unknown = [c for c in own if c not in encoder_classes]
            if unknown:
                raise Refused(
                    f"{path}: unknown class label {unknown[0]!r}: not in the label encoder"
                )
        return [str(c) for c in own], own
    mapping = encoder_classes if encoder_classes is not None else _label_list(listed)
    if mapping is None:
        raise Refused(
            f"{path}: cannot tell the class labels of a raw Booster "
            "(add label_encoder.pkl or 'classes' to metadata.json)"
        )
    if len(mapping) != n_classes:
        raise Refused(
            f"{path}: the model outputs {n_classes} classes but the label encoder lists "
            f"{len(mapping)}"
        )
    labels = [str(c) for c in mapping]
    return labels, None


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _label_list(value: Any) -> list[Any] | None:
    if isinstance(value, list) and len(value) >= 2:
        return value
    return None


# -- probe comparison ----------------------------------------------------------------------
def probe_set(model_str: str, n_features: int, rows: int = PROBE_ROWS, seed: int = 0) -> np.ndarray:
    """Rows spread over each feature's training range (from the model's ``feature_infos``),
    a margin beyond it, and some missing values, so most split paths are exercised."""
    rng = np.random.default_rng(seed)
    infos = _feature_infos(model_str, n_features)
    x = np.empty((rows, n_features))
    for j, info in enumerate(infos):
        if isinstance(info, list):  # categorical: its known values plus an unseen one
            x[:, j] = rng.choice([*info, max(info) + 1], size=rows)
        else:
            low, high = info
            span = (high - low) or 1.0
            x[:, j] = rng.uniform(low - 0.1 * span, high + 0.1 * span, size=rows)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[0, :] = np.nan
    x[1, :] = 0.0
    return x


def _feature_infos(model_str: str, n_features: int) -> list[Any]:
    line = next((ln for ln in model_str.splitlines() if ln.startswith("feature_infos=")), "")
    tokens = line.partition("=")[2].split()
    infos: list[Any] = []
    for token in tokens[:n_features]:
        if token.startswith("[") and ":" in token:
            low, _, high = token[1:-1].partition(":")
            infos.append((_finite(low, -1.0), _finite(high, 1.0)))
        elif re.fullmatch(r"-?\d+(:-?\d+)*", token):
            infos.append([int(v) for v in token.split(":")])
        else:  # "none": the feature was never used
            infos.append((-1.0, 1.0))
    infos += [(-3.0, 3.0)] * (n_features - len(infos))
    return infos


def _finite(text: str, default: float) -> float:
    try:
        value = float(text)
    except ValueError:
        return default
    return value if math.isfinite(value) else default


def _compare(
    path: Path, seed: _Seed, loaded: Any, probe: np.ndarray, labels: list[str], own: Any
) -> float:
    """Refuse unless the converted model answers exactly like the original on ``probe``."""
    import lightgbm as lgb

    converted = loaded.predict_proba(probe)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(seed.estimator, lgb.LGBMClassifier):
            original = np.asarray(seed.estimator.predict_proba(probe))
            original_labels = np.asarray(seed.estimator.predict(probe))
        else:
            raw = np.asarray(seed.booster.predict(probe))
            original = np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw
            original_labels = None
    if original.shape != converted.shape:
        raise Refused(
            f"{path}: converted model outputs shape {converted.shape}, original {original.shape}"
        )
    diff = float(np.nanmax(np.abs(original - converted))) if original.size else 0.0
    if not np.allclose(original, converted, rtol=RTOL, atol=ATOL):
        raise Refused(
            f"{path}: the converted model does not predict what the original did "
            f"(max difference {diff:.3g} on {len(probe)} probe rows)"
        )
    if original_labels is not None:
        index = {_key(c): i for i, c in enumerate(own)}
        mine = [labels[i] for i in converted.argmax(axis=1)]
        theirs = [labels[index[_key(c)]] for c in original_labels]
        if mine != theirs:
            raise Refused(f"{path}: the converted model's labels differ from the original's")
    return diff


def _key(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# -- seed metadata -------------------------------------------------------------------------
_START_KEYS = ("train_start", "training_start", "start_date", "data_start", "train_start_date")
_END_KEYS = ("train_end", "training_end", "end_date", "data_end", "train_end_date")
_ROWS_KEYS = ("n_samples", "rows", "training_samples", "n_train", "train_size", "n_rows")
_CREATED_KEYS = ("created_at", "trained_at", "training_date", "timestamp", "date")


def _created_at(meta: dict[str, Any]) -> str:
    value = _first(meta, _CREATED_KEYS)
    return value if isinstance(value, str) and value else utc_now()


def _metrics(meta: dict[str, Any], notes: list[str]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    nested = meta.get("metrics")
    candidates = dict(nested) if isinstance(nested, dict) else {}
    for key, value in meta.items():
        if any(h in key.lower() for h in _METRIC_HINTS):
            candidates.setdefault(key, value)
    for key, value in candidates.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            metrics[str(key)] = float(value)
        else:
            notes.append(f"dropped metric {key}: not a finite number")
    return metrics


def _training(meta: dict[str, Any]) -> dict[str, Any]:
    training: dict[str, Any] = {}
    for name, keys in (("start", _START_KEYS), ("end", _END_KEYS), ("rows", _ROWS_KEYS)):
        value = _first(meta, keys)
        if value is not None:
            training[name] = _jsonable(value)
    nested = meta.get("training")
    if isinstance(nested, dict):
        training.update({k: _jsonable(v) for k, v in nested.items() if _scalar(v)})
    return training


def _hyperparameters(seed: _Seed, meta: dict[str, Any]) -> dict[str, Any]:
    for key in ("hyperparameters", "params", "model_params", "best_params"):
        value = meta.get(key)
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items() if _scalar(v)}
    get_params = getattr(seed.estimator, "get_params", None)
    params = get_params() if callable(get_params) else dict(getattr(seed.booster, "params", {}))
    return {str(k): _jsonable(v) for k, v in params.items() if _scalar(v)}


def _scalar(value: Any) -> bool:
    if isinstance(value, float | np.floating):
        return math.isfinite(float(value))
    return value is None or isinstance(value, str | int | bool | np.integer | date)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
