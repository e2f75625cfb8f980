"""One model folder (or one pickle file) -> a checked bundle: what ``publish`` reads, and what
each ``etfs/{T}/production/`` folder of a seed ``models_storage/`` tree holds.

- native: ``metadata.json`` with ``feature_names`` and ``classes`` plus the artifacts it lists
  (``model.txt``, ``*.treelite``); taken as it is, each artifact re-hashed against the sha256
  the metadata records.
- a network: seed 001's GRU (``model.pth``) or PPO (``model.zip``) run, or a team's own
  ``model.onnx`` with ``network.json`` (``network_runs``);
- seed: one model pickle (``model.joblib``, ``model.pkl``, ``lightgbm_clean_model.pkl``, ...:
  a bare estimator of any supported family, or a seed dict, see
  ``publishing.conversion.recipe``) or a LightGBM ``model.txt``; a label encoder
  (``label_encoder*.pkl`` / ``.joblib``); ``feature_names*.json`` (the full ordered list,
  e.g. seed 000's ``feature_names_clean.json``) and/or ``feature_names_selected.json`` (the
  names the model uses, or indices); an optional seed ``metadata.json`` (feature names,
  selected indices, classes, metrics, training dates, hyperparameters).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.network_runs import NetworkOptions, read_network
from tickerserve.errors import InvalidModel, TickerserveError
from tickerserve.layout import METADATA_FILE, MODEL_FILE
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion import seed_metadata as seedmeta
from tickerserve.publishing.conversion.assemble import PLACEHOLDER_VERSION
from tickerserve.publishing.conversion.feature_names import all_ints, as_ints, as_names
from tickerserve.publishing.conversion.pickles import PICKLE_SUFFIXES, torch_refusal, unpickle
from tickerserve.publishing.conversion.recipe import (
    CLASS_KEYS,
    INDEX_KEYS,
    NAME_KEYS,
    SELECTED_KEYS,
    Converted,
    Recipe,
    convert,
    convert_pickle,
    from_pickle,
)
from tickerserve.storage.bundle import BundleMetadata, make_bundle
from tickerserve.storage.store import sha256_hex

# Pickles beside a model that are not the model (seed 001 keeps its preprocessor there).
HELPER_STEMS = ("encoder", "preprocessor", "scaler", "vecnormalize", "normalizer")
SELECTION_FILES = ("feature_names_selected.json", "selected_features.json")
CONFIG_KEYS = ("config", "training_config")
IMPORTANCE_FILE = "feature_importance.parquet"  # seed 001: kept beside the version


def read_folder(
    path: Path,
    *,
    model: str,
    asset_class: str | None = None,
    features: list[str] | None = None,
    network: NetworkOptions | None = None,
) -> Converted:
    """Read a native bundle folder, or convert a seed folder or pickle file; refuse anything
    doubtful. ``features`` are the names to use when the seed and its estimator name none.
    A network (a GRU checkpoint or run, a PPO run, model.onnx + network.json) is converted to
    an ONNX version (``network_runs``; ``network`` holds --window and --torch-module)."""
    converted = read_network(
        path, model=model, asset_class=asset_class, features=features, options=network
    )
    if converted is not None:
        return converted
    if path.is_file():
        return _convert_file(path, model=model, asset_class=asset_class, features=features)
    if not path.is_dir():
        raise Refused(f"{path}: not a folder")
    pickles = _model_pickles(path)
    native = _native_metadata(path)
    if native is not None and not pickles:
        return _load_native(path, native, model=model, asset_class=asset_class)
    if not pickles and not (path / MODEL_FILE).is_file():
        torch = [torch_refusal(p) for p in sorted(path.iterdir()) if p.is_file()]
        reasons = [r for r in torch if r is not None]
        if reasons:
            raise NotConvertible(f"{path}: {reasons[0]}")
        raise Refused(
            f"{path}: no model found (expected {MODEL_FILE} with a native metadata.json, "
            "or a seed model.joblib / model.pkl)"
        )
    recipe = _read_seed(path, pickles)
    converted = convert(
        recipe, model=model, asset_class=asset_class, fallback_names=features, label=path
    )
    importance = path / IMPORTANCE_FILE
    if not importance.is_file():
        return converted
    files = {**converted.bundle.files, IMPORTANCE_FILE: importance.read_bytes()}
    return dataclasses.replace(converted, bundle=make_bundle(converted.bundle.metadata, files))


def _convert_file(
    file: Path, *, model: str, asset_class: str | None, features: list[str] | None
) -> Converted:
    if file.suffix.lower() not in PICKLE_SUFFIXES:
        reason = torch_refusal(file)
        raise NotConvertible(
            f"{file.parent}: {reason}" if reason else f"{file}: not a pickle (.joblib, .pkl)"
        )
    return convert_pickle(file, model=model, asset_class=asset_class, fallback_names=features)


# -- native bundles ------------------------------------------------------------------------
def _native_metadata(path: Path) -> dict[str, Any] | None:
    meta_path = path / METADATA_FILE
    if not meta_path.is_file():
        return None
    raw = read_json(meta_path)
    native = isinstance(raw, dict) and "feature_names" in raw and "classes" in raw
    has_model = native and (
        "ensemble" in raw or "artifacts" in raw or (path / MODEL_FILE).is_file()
    )
    return raw if has_model else None


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
    fields = dict(raw, model=model, version=PLACEHOLDER_VERSION)
    if asset_class is not None:
        fields["asset_class"] = asset_class
    stub = {n: {"size": len(d), "sha256": sha256_hex(d)} for n, d in files.items()}
    try:
        metadata = BundleMetadata.from_dict(fields | {"artifacts": stub})
    except (ValueError, TypeError, KeyError) as exc:
        raise Refused(f"{path / METADATA_FILE}: {exc}") from None
    bundle = make_bundle(metadata, files)
    from tickerserve.serving.model import LoadedModel

    try:
        LoadedModel(bundle.metadata, bundle.files)
    except TickerserveError as exc:
        raise Refused(f"{path}: {exc.message}") from None
    return Converted(bundle, "native", metadata.model_type)


# -- seed folders --------------------------------------------------------------------------
def _is_helper(file: Path) -> bool:
    stem = file.stem.lower()
    return any(h in stem for h in HELPER_STEMS)


def _model_pickles(path: Path) -> list[Path]:
    return sorted(
        p for p in path.iterdir()
        if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES and not _is_helper(p)
    )  # fmt: skip


def _read_seed(path: Path, pickles: list[Path]) -> Recipe:
    preferred = [p for p in pickles if p.stem == "model"]
    if len(preferred) == 1:
        pickles = preferred
    if len(pickles) > 1:
        names = ", ".join(p.name for p in pickles)
        raise Refused(f"{path}: several model files ({names}); keep one or name it model.joblib")
    files: dict[str, str] = {}
    if pickles:
        recipe = from_pickle(unpickle(pickles[0]), label=path)
        files[pickles[0].name] = sha256_hex(pickles[0].read_bytes())
    else:
        recipe = Recipe({"model": _text_booster(path / MODEL_FILE)})
        files[MODEL_FILE] = sha256_hex((path / MODEL_FILE).read_bytes())
    encoders = sorted(
        p for p in path.iterdir()
        if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES and "encoder" in p.stem.lower()
    )  # fmt: skip
    if len(encoders) > 1:
        raise Refused(f"{path}: several label encoders ({', '.join(p.name for p in encoders)})")
    if encoders:
        recipe.encoder = unpickle(encoders[0])
        files[encoders[0].name] = sha256_hex(encoders[0].read_bytes())
    meta = _seed_metadata(path)
    _feature_lists(path, recipe, meta, model_stem=pickles[0].stem if pickles else "model")
    listed = seedmeta.first(meta, CLASS_KEYS)
    if isinstance(listed, list) and recipe.listed_classes is None:
        recipe.listed_classes = listed
    recipe.metrics = {**recipe.metrics, **seedmeta.metrics(meta, recipe.notes)}
    recipe.training = {**recipe.training, **seedmeta.training(meta)}
    if any(k in meta for k in seedmeta.CREATED_KEYS):
        recipe.created_at = seedmeta.created_at(meta)
    if any(isinstance(meta.get(k), dict) for k in seedmeta.HYPER_KEYS):
        recipe.hyperparameters = seedmeta.hyperparameters(meta)
    recipe.source["files"] = files
    # Seed 001's model and training configuration, kept with the version (shown by `show`).
    for key in CONFIG_KEYS:
        if isinstance(meta.get(key), dict):
            recipe.source[key] = json_tree(meta[key])
    return recipe


def json_tree(value: Any) -> Any:
    """A JSON value as JSON can hold it: non-finite numbers become null, anything else text."""
    if isinstance(value, dict):
        return {str(k): json_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_tree(v) for v in value]
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def _text_booster(file: Path) -> Any:
    """lightgbm's own Booster (conversion works with the lightgbm package, unlike serving),
    loaded in a forked child first: LightGBM aborts the process on some malformed text."""
    from tickerserve.members.lightgbm import lightgbm_single_threaded, predict_probe_rows
    from tickerserve.members.safe_load import safe_load

    try:
        return safe_load(
            _python_booster,
            file.read_bytes(),
            what=MODEL_FILE,
            check=predict_probe_rows,
            child_setup=lightgbm_single_threaded,
        )
    except TickerserveError as exc:
        raise Refused(f"{file}: {exc.message}") from None


def _python_booster(data: bytes) -> Any:
    import lightgbm as lgb

    try:
        return lgb.Booster(model_str=data.decode("utf-8"))
    except (lgb.basic.LightGBMError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidModel(f"not a LightGBM text model: {exc}") from None


def _seed_metadata(path: Path) -> dict[str, Any]:
    file = path / METADATA_FILE
    if not file.is_file():
        return {}
    raw = read_json(file)
    if not isinstance(raw, dict):
        raise Refused(f"{file}: must be a JSON object")
    return raw


def _feature_lists(path: Path, recipe: Recipe, meta: dict[str, Any], *, model_stem: str) -> None:
    """Full list and selection from metadata.json, then from dedicated files (which win)."""
    names = seedmeta.first(meta, NAME_KEYS)
    if names is not None and not all_ints(names):
        recipe.full_names = as_names(names, path / METADATA_FILE)
    picked = seedmeta.first(meta, SELECTED_KEYS)
    if all_ints(picked):
        recipe.indices = as_ints(picked, path / METADATA_FILE)
    elif picked is not None:
        recipe.chosen = as_names(picked, path / METADATA_FILE)
    indices = seedmeta.first(meta, INDEX_KEYS)
    if indices is not None:
        recipe.indices = as_ints(indices, path / METADATA_FILE)
    full_file = _full_names_file(path, model_stem)
    if full_file is not None:
        raw = read_json(full_file)
        value = raw if isinstance(raw, list) else seedmeta.first(raw, NAME_KEYS)
        recipe.full_names = as_names(value, full_file)
        if isinstance(raw, dict) and seedmeta.first(raw, INDEX_KEYS) is not None:
            recipe.indices = as_ints(seedmeta.first(raw, INDEX_KEYS), full_file.name)
    for name in SELECTION_FILES:
        file = path / name
        if not file.is_file():
            continue
        raw = read_json(file)
        value = raw if isinstance(raw, list) else seedmeta.first(raw, (*SELECTED_KEYS, *NAME_KEYS))
        if all_ints(value):
            recipe.indices = as_ints(value, file)
        else:
            recipe.chosen = as_names(value, file)
        if isinstance(raw, dict) and seedmeta.first(raw, INDEX_KEYS) is not None:
            recipe.indices = as_ints(seedmeta.first(raw, INDEX_KEYS), name)
    for file in sorted(path.glob("*indices*.json")):
        raw = read_json(file)
        recipe.indices = as_ints(
            seedmeta.first(raw, INDEX_KEYS) if isinstance(raw, dict) else raw, file
        )


def _full_names_file(path: Path, model_stem: str) -> Path | None:
    """``feature_names.json``, else the one ``feature_names_*.json`` (seed 000's
    ``feature_names_clean.json``); with several, the one whose tag the model file shares."""
    exact = path / "feature_names.json"
    if exact.is_file():
        return exact
    found = [
        p for p in sorted(path.glob("feature_names_*.json"))
        if p.name not in SELECTION_FILES and "selected" not in p.name
    ]  # fmt: skip
    if len(found) <= 1:
        return found[0] if found else None
    tagged = [p for p in found if p.stem.removeprefix("feature_names_") in model_stem]
    if len(tagged) == 1:
        return tagged[0]
    raise Refused(
        f"{path}: several feature name files ({', '.join(p.name for p in found)}); keep one"
    )


def read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise Refused(f"{file}: not valid JSON ({type(exc).__name__}: {exc})") from None
