"""Converted members -> one bundle, checked against the originals before anything is written.

The check loads the bundle exactly as the function does (``LoadedModel``) and compares, on
probe rows, every member with its original estimator and the combined answer with the
original combination (``np.allclose`` with ``RTOL``/``ATOL``; predicted labels must agree
wherever the original's top two classes are not tied). A difference refuses the bundle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tickerserve.errors import TickerserveError
from tickerserve.publishing.conversion import NotConvertible
from tickerserve.publishing.conversion.estimators import ConvertedMember
from tickerserve.publishing.conversion.linear import ConvertedLinear
from tickerserve.publishing.conversion.probe import PROBE_ROWS, probe_rows
from tickerserve.storage.bundle import (
    CLASSIFICATION,
    REGRESSION,
    Bundle,
    BundleMetadata,
    make_bundle,
)
from tickerserve.storage.registry import utc_now

PLACEHOLDER_VERSION = "0.0.0"  # the real version is chosen at publish time
# Tight enough that one wrong split or leaf fails loudly; loose enough for the last bit of a
# float32 exp (XGBoost's links run in float32, numpy's exp may round its last bit otherwise).
RTOL, ATOL = 1e-6, 1e-9
SMALL_PROBES = 16  # probe rows also predicted one at a time


@dataclass
class Assembled:
    """A checked bundle and what the check measured."""

    bundle: Bundle
    probe_rows: int
    max_abs_diff: float
    member_diffs: dict[str, float] = field(default_factory=dict)

    @property
    def estimator(self) -> str:
        meta = self.bundle.metadata
        names = [m.estimator or m.kind for m in meta.members]
        if meta.stacking is not None:
            names.append(meta.stacking.estimator or "linear")
        return "+".join(names)


def assemble(
    members: Sequence[ConvertedMember],
    *,
    model: str,
    feature_names: list[str],
    selected_features: list[int] | None = None,
    method: str = "single",
    stacking: ConvertedLinear | None = None,
    labels: list[str] | None = None,
    reference: Callable[[np.ndarray], np.ndarray] | None = None,
    model_type: str | None = None,
    asset_class: str | None = None,
    created_at: str = "",
    metrics: dict[str, float] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    rows: int = PROBE_ROWS,
) -> Assembled:
    """Build the bundle, load it as the function would, and refuse it unless it answers like
    the originals. ``labels`` name the classes in output order (default: the members' own
    class values); ``reference`` is the original combined answer when it is not simply the
    members' weighted average or the stacking meta-learner."""
    if not members:
        raise NotConvertible("no members to assemble")
    task = members[0].task
    if any(m.task != task for m in members):
        raise NotConvertible("members mix classifiers and regressors")
    used = (
        feature_names
        if selected_features is None
        else [feature_names[i] for i in selected_features]
    )
    for m in members:
        _check_features(m, used)
    classes = _classes(members, labels) if task == CLASSIFICATION else []
    if stacking is not None:
        method = "stacking"
        width = (len(classes) if task == CLASSIFICATION else 1) * len(members)
        if stacking.n_inputs != width:
            raise NotConvertible(
                f"the meta-learner takes {stacking.n_inputs} inputs but the members give {width}"
            )
    files: dict[str, bytes] = {}
    for m in members:
        for name, data in {m.spec.artifact: m.data, **m.extra_files}.items():
            if name in files:
                raise NotConvertible(f"two members would both be stored as {name}")
            files[name] = data
    params = dict(hyperparameters or {})
    if not params and len(members) == 1:
        params = dict(members[0].hyperparameters)
    elif not params:
        params = {m.spec.name or m.spec.artifact: m.hyperparameters for m in members}
    metadata = BundleMetadata(
        model=model,
        version=PLACEHOLDER_VERSION,
        feature_names=list(feature_names),
        classes=classes,
        artifacts={},
        members=[m.spec for m in members],
        method=method,  # type: ignore[arg-type]
        stacking=None if stacking is None else stacking.model,
        selected_features=selected_features,
        model_type=model_type or _model_type(members, stacking),
        created_at=created_at or utc_now(),
        asset_class=asset_class,
        metrics=dict(metrics or {}),
        hyperparameters=params,
        training=dict(training or {}),
        source=dict(source or {}),
        task=task,
        accepts_missing=all(m.accepts_missing for m in members),
    )
    bundle = _bundle(metadata, files)
    from tickerserve.serving.model import LoadedModel  # imports each member kind's library

    try:
        loaded = LoadedModel(bundle.metadata, bundle.files)
    except TickerserveError as exc:
        raise NotConvertible(exc.message) from None
    splits: dict[int, list[float]] = {}
    for m in members:
        for feature, points in m.splits.items():
            splits.setdefault(feature, []).extend(points)
    probe = probe_rows(len(used), splits, rows=rows, missing=metadata.accepts_missing)
    diffs = {}
    mine_members = loaded.member_outputs(probe)
    theirs_members = [m.reference(probe) for m in members]
    # Small requests may take another engine than batches (XGBoost: onnxruntime below
    # LIBXGBOOST_MIN_ROWS rows, XGBoost's own library above): both are checked.
    small = [np.vstack(outputs) for outputs in zip(
        *(loaded.member_outputs(probe[i : i + 1]) for i in range(SMALL_PROBES)), strict=True
    )]  # fmt: skip
    for m, mine, theirs, one in zip(members, mine_members, theirs_members, small, strict=True):
        label = m.spec.name or m.spec.artifact
        what = f"member {label} ({m.spec.estimator})"
        diffs[label] = max(
            _compare(what, mine, theirs, len(probe)),
            _compare(f"{what} one row at a time", one, theirs[:SMALL_PROBES], SMALL_PROBES),
        )
    if reference is None:
        reference = _combined_reference(metadata, theirs_members, stacking)
    else:
        theirs_combined = reference
        reference = lambda _: theirs_combined(probe)  # noqa: E731
    mine = loaded.predict(probe).outputs
    theirs = np.asarray(reference(probe), dtype=np.float64)
    if task == REGRESSION:
        mine, theirs = mine.reshape(-1, 1), theirs.reshape(-1, 1)
    combined = _compare("the combined answer", mine, theirs, len(probe))
    if task == CLASSIFICATION:
        _check_labels(mine, theirs)
    worst = max([combined, *diffs.values()])
    bundle.metadata.source["probe"] = {"rows": len(probe), "max_abs_diff": worst}
    return Assembled(_bundle(bundle.metadata, files), len(probe), worst, diffs)


def _bundle(metadata: BundleMetadata, files: dict[str, bytes]) -> Bundle:
    try:
        return make_bundle(metadata, files)
    except TickerserveError as exc:
        raise NotConvertible(exc.message) from None


def _check_features(member: ConvertedMember, used: list[str]) -> None:
    label = member.spec.name or member.spec.estimator
    if member.n_features != len(used):
        raise NotConvertible(
            f"{label} expects {member.n_features} features but the feature names list {len(used)}"
        )
    trained = member.trained_names
    if trained is None:
        return
    expected = [n.replace(" ", "_") for n in used] if member.spec.kind == "lightgbm" else used
    for i, (got, want) in enumerate(zip(trained, expected, strict=True)):
        if got != want:
            raise NotConvertible(
                f"{label}: feature {i} is {got!r} in the model but {used[i]!r} in the feature names"
            )


def _classes(members: Sequence[ConvertedMember], labels: list[str] | None) -> list[str]:
    own = members[0].classes or []
    for m in members[1:]:
        if [_plain(c) for c in m.classes or []] != [_plain(c) for c in own]:
            raise NotConvertible(
                f"members disagree on the classes: {own} vs {m.classes} "
                f"({m.spec.name or m.spec.estimator})"
            )
    if labels is None:
        return [str(_plain(c)) for c in own]
    if len(labels) != len(own):
        raise NotConvertible(f"{len(labels)} class labels for {len(own)} classes")
    return list(labels)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _model_type(members: Sequence[ConvertedMember], stacking: ConvertedLinear | None) -> str:
    kinds = [(m.spec.estimator or m.spec.kind) for m in members]
    if stacking is not None:
        return "stack:" + "+".join([*kinds, stacking.model.estimator])
    if len(kinds) == 1:
        return kinds[0]
    return "ensemble:" + "+".join(kinds)


def _combined_reference(
    metadata: BundleMetadata, outputs: list[np.ndarray], stacking: ConvertedLinear | None
) -> Callable[[np.ndarray], np.ndarray]:
    if stacking is not None:
        inputs = np.hstack(outputs)
        return lambda _: stacking.reference(inputs)
    total = sum(m.weight for m in metadata.members)
    combined = sum(m.weight / total * o for m, o in zip(metadata.members, outputs, strict=True))
    return lambda _: np.asarray(combined)


def _compare(what: str, mine: np.ndarray, theirs: np.ndarray, n_rows: int) -> float:
    if mine.shape != theirs.shape:
        raise NotConvertible(
            f"{what}: converted output shape {mine.shape}, original {theirs.shape}"
        )
    diff = float(np.nanmax(np.abs(mine - theirs))) if mine.size else 0.0
    if not np.allclose(mine, theirs, rtol=RTOL, atol=ATOL):
        raise NotConvertible(
            f"{what} does not match the original (max difference {diff:.3g} on {n_rows} probe rows)"
        )
    return diff


def _check_labels(mine: np.ndarray, theirs: np.ndarray) -> None:
    ordered = np.sort(theirs, axis=1)
    clear = ordered[:, -1] - ordered[:, -2] > 1e-6  # a near-tie may go either way
    if (mine.argmax(axis=1)[clear] != theirs.argmax(axis=1)[clear]).any():
        raise NotConvertible("the converted model's labels differ from the original's")
