"""A seed's model as a recipe, and its conversion into a checked bundle.

A recipe names the estimators and how they combine (single, weighted average, stacking), the
feature names requests use, how the class labels read and what the seed's metadata says.
``from_pickle`` recognises what the seeds pickled:

- seed 003: ``{"xgb_model", "lgbm_model", "meta_model", "feature_cols"}``: a stack whose
  meta-learner sees ``[xgb_model, lgbm_model]`` predictions side by side;
- seed 002: ``{"models": {"rf": ..., "gb": ...}, "weights": {...}, "ensemble_accuracy",
  "performances", ...}``: a weighted average of the members' probabilities;
- seeds 000 and 001: ``{"model", "feature_names", "selected_features", "label_encoder", ...}``
  or a bare estimator (seed 004's joblib files).

``convert`` turns every estimator into a member (``estimators``), a meta-learner into
coefficients (``linear``) and refuses the bundle unless it answers like the originals
(``assemble``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion import seed_metadata as seedmeta
from tickerserve.publishing.conversion.assemble import assemble
from tickerserve.publishing.conversion.estimators import ConvertedMember, convert_estimator
from tickerserve.publishing.conversion.feature_names import all_ints, as_ints, as_names, selection
from tickerserve.publishing.conversion.labels import class_labels
from tickerserve.publishing.conversion.linear import convert_linear
from tickerserve.publishing.conversion.pickles import unpickle
from tickerserve.publishing.conversion.probe import PROBE_ROWS
from tickerserve.storage.bundle import CLASSIFICATION, Bundle
from tickerserve.storage.registry import utc_now
from tickerserve.storage.store import sha256_hex

SINGLE_KEYS = ("model", "classifier", "regressor", "estimator", "booster")
STACK_META = "meta_model"
STACK_ORDER = ("xgb_model", "lgbm_model")  # seed 003: meta_model.predict([xgb, lgbm])
NAME_KEYS = ("feature_names", "feature_cols", "features", "all_features", "columns", "names")
SELECTED_KEYS = ("selected_features", "feature_names_selected", "selected_feature_names")
INDEX_KEYS = ("selected_indices", "selected_feature_indices", "feature_indices", "indices")
ENCODER_KEYS = ("label_encoder", "encoder")
CLASS_KEYS = ("classes", "class_labels", "label_classes", "labels", "strategies", "class_names")
_ARTIFACT_STEM = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Recipe:
    """What to convert: estimators by name (in the order a meta-learner sees them), how they
    combine, and what is known about features, labels and the model's history."""

    members: dict[str, Any]
    method: str = "single"  # single | weighted_average | stacking
    weights: dict[str, float] = field(default_factory=dict)
    meta_learner: Any = None
    full_names: list[str] | None = None  # the full ordered list (requests name these)
    own_names: list[str] | None = None  # the names the pickle itself lists
    chosen: list[str] | None = None  # names of the subset the model uses
    indices: list[int] | None = None  # that subset as indices into the full list
    encoder: Any = None
    listed_classes: list[Any] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    source: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def first(self) -> Any:
        return next(iter(self.members.values()))


@dataclass
class Converted:
    """A bundle ready to publish plus what the conversion found out."""

    bundle: Bundle
    kind: str  # "native" (taken as it is) or "seed" (converted and checked)
    estimator: str
    probe_rows: int = 0
    max_abs_diff: float = 0.0
    member_diffs: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        meta = self.bundle.metadata
        return {
            "kind": self.kind,
            "estimator": self.estimator,
            "task": meta.task,
            "features": len(meta.used_features),
            "classes": meta.classes,
            "probe_rows": self.probe_rows,
            "max_abs_diff": self.max_abs_diff,
            "member_diffs": self.member_diffs,
            "warnings": self.warnings,
            **self._network(),
        }

    def _network(self) -> dict[str, Any]:
        """A network's input and the relative difference its check measured."""
        meta = self.bundle.metadata
        if meta.network is None:
            return {}
        probe = meta.source.get("probe") or {}
        return {"network": meta.network.to_dict(),
                "max_relative_diff": probe.get("max_relative_diff")}  # fmt: skip


def from_pickle(obj: Any, *, label: object) -> Recipe:
    """Recognise what a seed pickled (see the module docstring); refuse anything else."""
    if not isinstance(obj, dict):
        return Recipe({"model": obj})
    if STACK_META in obj:
        recipe = _stack(obj, label)
    elif isinstance(obj.get("models"), dict):
        recipe = _weighted(obj, label)
    else:
        key = next((k for k in SINGLE_KEYS if obj.get(k) is not None), None)
        if key is None:
            keys = ", ".join(sorted(map(str, obj))[:12])
            raise NotConvertible(
                f"{label}: the pickled dict holds no model (keys: {keys}); expected 'model', "
                "'models' + 'weights' (seed 002) or 'xgb_model' / 'lgbm_model' / 'meta_model' "
                "(seed 003)"
            )
        recipe = Recipe({"model": obj[key]})
    names = seedmeta.first(obj, NAME_KEYS)
    if names is not None and not all_ints(names):
        recipe.own_names = as_names(names, label)
    picked = seedmeta.first(obj, SELECTED_KEYS)
    if picked is not None:
        if all_ints(picked):
            recipe.indices = as_ints(picked, label)
        else:
            recipe.chosen = as_names(picked, label)
    indices = seedmeta.first(obj, INDEX_KEYS)
    if indices is not None:
        recipe.indices = as_ints(indices, label)
    recipe.encoder = seedmeta.first(obj, ENCODER_KEYS)
    listed = seedmeta.first(obj, CLASS_KEYS)
    recipe.listed_classes = listed if isinstance(listed, list) else None
    if seedmeta.first(obj, seedmeta.CREATED_KEYS) is not None:
        recipe.created_at = seedmeta.created_at(obj)
    return recipe


def _stack(obj: dict[str, Any], label: object) -> Recipe:
    names = [k for k in STACK_ORDER if k in obj]
    names += [k for k in obj if k.endswith("_model") and k != STACK_META and k not in names]
    if not names:
        raise NotConvertible(f"{label}: the stack has a meta_model but no member models")
    return Recipe({k: obj[k] for k in names}, method="stacking", meta_learner=obj[STACK_META])


def _weighted(obj: dict[str, Any], label: object) -> Recipe:
    models: dict[str, Any] = obj["models"]
    if not models:
        raise NotConvertible(f"{label}: 'models' is empty")
    raw = obj.get("weights")
    notes: list[str] = []
    if raw is None:
        weights = dict.fromkeys(models, 1.0)
        notes.append("no weights: the members are averaged equally")
    elif not isinstance(raw, dict):
        raise NotConvertible(f"{label}: 'weights' must map member names to numbers")
    else:
        missing = [k for k in models if k not in raw]
        if missing:
            raise NotConvertible(f"{label}: 'weights' has no weight for member {missing[0]!r}")
        weights = {}
        for k in models:
            value = raw[k]
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise NotConvertible(f"{label}: the weight of {k!r} must be a positive number")
            weights[k] = float(value)
        others = sorted(str(k) for k in raw if k not in models)
        if others:
            # The seed's other forecasters (ARIMA, Prophet, ...) are not in the pickle.
            notes.append(
                f"weights of members not in the pickle ({', '.join(others)}) are left out; "
                "the pickled members' weights are renormalised"
            )
    recipe = Recipe(dict(models), method="weighted_average", weights=weights, notes=notes)
    accuracy = obj.get("ensemble_accuracy")
    if isinstance(accuracy, int | float) and not isinstance(accuracy, bool):
        recipe.metrics["ensemble_accuracy"] = float(accuracy)
    performances = obj.get("performances")
    if isinstance(performances, dict):
        for member, values in performances.items():
            if isinstance(values, dict):
                found = seedmeta.metrics(values, recipe.notes)
                recipe.metrics.update({f"{member}_{k}": v for k, v in found.items()})
    recipe.source = {
        k: seedmeta.jsonable(obj[k])
        for k in ("symbol", "timeframe", "timestamp")
        if seedmeta.scalar(obj.get(k)) and obj.get(k) is not None
    }
    return recipe


def resolve_features(
    recipe: Recipe, member: ConvertedMember, *, fallback: list[str] | None, label: object,
    notes: list[str],
) -> tuple[list[str], list[int] | None]:  # fmt: skip
    """The full ordered feature list and, if the model uses a subset, its indices."""
    full, chosen, indices = recipe.full_names, recipe.chosen, recipe.indices
    own = recipe.own_names
    if full is None:
        full = own
    elif own is not None and own != full and chosen is None:
        chosen = own  # the pickle lists the subset it was trained on (seed 001)
    if (
        full is not None
        and indices is not None
        and len(full) == len(indices) == member.n_features
        and any(i >= len(full) for i in indices)
    ):
        # The list already is the selected subset; the full list is not known here.
        chosen, full = chosen or full, None
    if full is None and chosen is None:
        trained = member.trained_names
        if trained:
            return list(trained), None
        if fallback is not None:
            return list(fallback), None
        # Trained on bare arrays: seed 001's own convention names the columns by position.
        n = member.n_features
        notes.append(
            f"no feature names (the seed lists none and the estimator was fitted on arrays): "
            f"named feature_0 ... feature_{n - 1}; requests send them by those names or as a "
            f"list of {n} values in training order (--features FILE names them)"
        )
        return positional_names(n), None
    if full is None:
        assert chosen is not None
        if indices is not None:
            notes.append(
                f"only the {len(chosen)} selected feature names are known: requests name those"
            )
        return chosen, None
    return full, selection(full, chosen, indices, label=label)


def positional_names(n: int) -> list[str]:
    """``feature_0 ... feature_{n-1}``: the names of features a model names none for."""
    return [f"feature_{i}" for i in range(n)]


def convert(
    recipe: Recipe,
    *,
    model: str,
    asset_class: str | None = None,
    fallback_names: list[str] | None = None,
    label: object = "",
    rows: int = PROBE_ROWS,
) -> Converted:
    """Convert and check; ``NotConvertible`` (prefixed with ``label``) says why not."""
    try:
        return _convert(recipe, model, asset_class, fallback_names, label, rows)
    except NotConvertible as exc:
        prefix = f"{label}: " if label else ""
        message = exc.message if exc.message.startswith(prefix) else prefix + exc.message
        raise NotConvertible(message) from None


def convert_pickle(
    file: Path,
    *,
    model: str,
    asset_class: str | None = None,
    fallback_names: list[str] | None = None,
    label: object = None,
    adjust: Callable[[Recipe], object] | None = None,
) -> Converted:
    """Convert one pickled seed model: unpickle it (a probe child first), let ``adjust`` add
    what the seed's tree says about it, record the file's sha256 as the source, convert."""
    label = file if label is None else label
    recipe = from_pickle(unpickle(file), label=label)
    if adjust is not None:
        adjust(recipe)
    recipe.source["files"] = {file.name: sha256_hex(file.read_bytes())}
    return convert(
        recipe, model=model, asset_class=asset_class, fallback_names=fallback_names, label=label
    )


def _convert(
    recipe: Recipe, model: str, asset_class: str | None, fallback: list[str] | None,
    label: object, rows: int,
) -> Converted:  # fmt: skip
    notes = list(recipe.notes)
    single = len(recipe.members) == 1
    members = [
        convert_estimator(
            estimator,
            stem="model" if single else _stem(name),
            name="" if single else name,
            weight=recipe.weights.get(name, 1.0),
        )
        for name, estimator in recipe.members.items()
    ]
    full, selected = resolve_features(recipe, members[0], fallback=fallback, label=label,
                                      notes=notes)  # fmt: skip
    labels = None
    if members[0].task == CLASSIFICATION:
        labels = class_labels(
            list(members[0].classes or []),
            encoder=recipe.encoder,
            listed=recipe.listed_classes,
            indices_only=type(recipe.first).__name__ == "Booster",
            notes=notes,
            label=label,
        )
    stacking = None if recipe.meta_learner is None else convert_linear(recipe.meta_learner)
    params = recipe.hyperparameters or (
        seedmeta.hyperparameters({}, recipe.first) if single else {}
    )
    estimator = "+".join(type(e).__name__ for e in recipe.members.values())
    if stacking is not None:
        estimator += f"+{type(recipe.meta_learner).__name__}"
    source = {
        "kind": "seed",
        "estimator": estimator,
        **recipe.source,
        "converted_at": utc_now(),
    }
    assembled = assemble(
        members,
        model=model,
        feature_names=full,
        selected_features=selected,
        method=recipe.method if not single or stacking is not None else "single",
        stacking=stacking,
        labels=labels,
        asset_class=asset_class,
        created_at=recipe.created_at or utc_now(),
        metrics=recipe.metrics,
        hyperparameters=params,
        training=recipe.training,
        source=source,
        rows=rows,
    )
    return Converted(
        assembled.bundle,
        "seed",
        estimator,
        assembled.probe_rows,
        assembled.max_abs_diff,
        assembled.member_diffs,
        notes,
    )


def _stem(name: str) -> str:
    stem = _ARTIFACT_STEM.sub("_", name).strip("._-") or "member"
    return stem if stem[0].isalnum() else f"m{stem}"
