"""A loaded model version: its members (``tickerserve.members``) combined for one task.

Combinations: ``single`` (one member), ``weighted_average`` (of probabilities or values) and
``stacking`` (a linear meta-learner over the members' outputs side by side). Nothing is
unpickled; every member is loaded from bytes whose sha256 the caller has verified.

Explanations combine the same way, wherever that stays exact: per-feature contributions are
additive, so a weighted average (or a linear meta-learner) of member outputs is explained by
the same weights over the members' contributions, as long as every member explains the
output it hands on (probabilities, values). A member explained in margin space (log-odds)
hands on probabilities that are not additive in its contributions, so such a combination
has no exact explanation and says so.

A network (one ONNX member, ``metadata.network``) takes a window or an observation per
request (``schema`` is then a ``WindowSchema`` when the input has rows) and may answer
several named values, a policy's action, and the critic's value beside it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from tickerserve.baselines.ranges import Ranges, RangesError
from tickerserve.errors import InvalidModel
from tickerserve.members.kinds import (
    MARGIN,
    PROBABILITY,
    VALUE,
    Contributions,
    Explainable,
    Member,
    Unexplainable,
)
from tickerserve.members.loading import load_member
from tickerserve.members.onnx import OnnxMember
from tickerserve.serving.features import FeatureSchema
from tickerserve.serving.guard import Guard
from tickerserve.serving.windows import WindowSchema
from tickerserve.storage.bundle import CLASSIFICATION, REGRESSION, BundleMetadata

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelKey:
    model: str
    version: str

    def __str__(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(slots=True)
class Prediction:
    """Combined outputs for some rows, plus each member's share of agreement (ensembles).
    Read-only once made (not frozen: a frozen dataclass's init costs every request twice as
    long)."""

    outputs: np.ndarray  # (n_rows, n_classes) probabilities, (n_rows,) values, or
    # (n_rows, n_outputs) values of a network with several named outputs
    agreement: np.ndarray | None  # (n_rows,) share of members whose label is the answer's
    value: np.ndarray | None = None  # (n_rows,) a policy's critic value, when it answers one


def _explainable(kind: str, member: Member) -> Explainable:
    if not hasattr(member, "explain"):
        raise Unexplainable(f"{kind} members have no exact per-feature explanation")
    return member  # type: ignore[return-value]


class LoadedModel:
    """Members of one version, checked against their metadata, ready to predict; with its
    feature ranges, a ``guard`` that finds what in a row is unlike its reference (warnings)."""

    def __init__(
        self,
        metadata: BundleMetadata,
        files: Mapping[str, bytes],
        *,
        metadata_sha256: str | None = None,
        ranges: Ranges | None = None,
    ) -> None:
        """``ranges``: the version's feature ranges kept beside it (a sidecar); without them,
        its metadata's own, if any."""
        self.metadata = metadata
        self.metadata_sha256 = metadata_sha256  # the digest of the metadata.json it came from
        self.key = ModelKey(metadata.model, metadata.version)
        self.task = metadata.task
        self.classes = list(metadata.classes)
        self.used_features = metadata.used_features
        self.network = metadata.network
        self.schema: FeatureSchema | WindowSchema = FeatureSchema(
            metadata.feature_names, metadata.selected_features, missing=metadata.accepts_missing
        )
        if self.network is not None and self.network.rows is not None:
            self.schema = WindowSchema(
                self.network.rows, self.schema, input_kind=self.network.input
            )
        self.size_bytes = metadata.artifact_bytes  # members' own memory added below
        if ranges is None and metadata.ranges is not None:
            ranges = self._own_ranges(metadata)
        self.guard = Guard.of(self.used_features, ranges)
        self.members: list[Member] = []
        for spec in metadata.members:
            try:
                member = load_member(spec, files, task=self.task, n_classes=len(self.classes))
            except InvalidModel as exc:
                raise InvalidModel(f"{self.key}: {exc.message}") from None
            self._check(spec.artifact, member)
            self.members.append(member)
            # A tree member's engine holds arrays beyond its artifact (the memory budget's
            # LRU counts them too).
            self.size_bytes += int(getattr(member, "resident_bytes", 0))
        if self.network is not None:  # what each request's ``_predict_network`` asks
            member = self.members[0]
            assert isinstance(member, OnnxMember)  # the bundle's checks: a network has one
            self._network_run = member.run
            self._answers_value = self.network.value
            self._one_value = self.task == REGRESSION and member.n_outputs == 1
        total = sum(m.weight for m in metadata.members)
        self._weights = [m.weight / total for m in metadata.members]
        self._meta = None if metadata.stacking is None else metadata.stacking.prepared()
        # Agreement is what seed 002 reported for its weighted ensembles of classifiers.
        self.reports_agreement = (
            self.task == CLASSIFICATION
            and metadata.method == "weighted_average"
            and len(self.members) > 1
        )

    def _own_ranges(self, metadata: BundleMetadata) -> Ranges | None:
        """The ranges in the version's metadata; ranges this runtime cannot read (another
        schema) are not used: the version answers without warnings, as one without ranges."""
        try:
            return Ranges.from_dict(metadata.ranges)
        except RangesError as exc:
            logger.warning("%s: feature ranges not used (no warnings): %s", self.key, exc)
            return None

    @property
    def single_row_fast_path(self) -> bool:
        """Whether every LightGBM member answers one-row requests through LightGBM's fast
        path (it rests on LightGBM internals, so an upgrade could turn it off; /health shows
        it). Other member kinds have no such path to lose."""
        return all(getattr(member, "fast_path", True) for member in self.members)

    def _check(self, artifact: str, member: Member) -> None:
        if member.n_features != len(self.used_features):
            raise InvalidModel(
                f"{self.key}: {artifact} expects {member.n_features} features but metadata "
                f"lists {len(self.used_features)}"
            )
        if isinstance(member, OnnxMember):
            if member.n_outputs != self.metadata.n_outputs:
                raise InvalidModel(
                    f"{self.key}: {artifact} answers {member.n_outputs} value(s) per input, "
                    f"metadata expects {self.metadata.n_outputs}"
                )
            assert self.network is not None  # the bundle's checks: an onnx member has one
            if self.network.value and not member.has_value:
                raise InvalidModel(f"{self.key}: {artifact} names no value output")
        trained = member.trained_names
        # Named models must match by order, or name -> value requests would feed values into
        # the wrong inputs (LightGBM replaces spaces with underscores when it trains).
        if trained is not None and trained != [n.replace(" ", "_") for n in self.used_features]:
            raise InvalidModel(
                f"{self.key}: {artifact} was trained on features "
                f"{trained[:5]}... but metadata lists {self.used_features[:5]}... "
                "(names or order differ)"
            )

    def member_outputs(self, rows: np.ndarray) -> list[np.ndarray]:
        """Each member's own output, (n_rows, n_outputs) each."""
        return [m.predict(rows) for m in self.members]

    def predict(self, rows: np.ndarray) -> Prediction:
        """The combined answer for ``rows`` (already aligned to ``used_features``; a
        window's or 2-D observation's rows one after the other)."""
        if self.network is not None:
            return self._predict_network(rows)
        outputs = self.member_outputs(rows)
        if self._meta is not None:
            combined = self._meta.predict(np.hstack(outputs))
        elif len(outputs) == 1:
            combined = outputs[0]
        else:
            combined = np.asarray(sum(w * o for w, o in zip(self._weights, outputs, strict=True)))
        agreement = None
        if self.reports_agreement:
            answer = combined.argmax(axis=1)
            votes = np.stack([o.argmax(axis=1) == answer for o in outputs])
            agreement = votes.mean(axis=0)
        if self.task == REGRESSION:
            return Prediction(combined[:, 0], None)
        return Prediction(combined, agreement)

    def explain(self, rows: np.ndarray) -> Contributions:
        """Exact per-feature contributions of the combined output for ``rows`` (aligned to
        ``used_features``); ``Unexplainable`` (with the reason) where none exist."""
        if self.network is not None:
            raise Unexplainable(
                "it is a network (an ONNX GRU or policy): networks have no exact per-feature "
                "explanation here, since exact contributions (TreeSHAP) are computed over a "
                "model's trees"
            )
        pairs = zip(self.metadata.members, self.members, strict=True)
        parts = [_explainable(spec.kind, member).explain(rows) for spec, member in pairs]
        if self.metadata.method == "single":
            return parts[0]
        handed_on = {PROBABILITY, VALUE}  # what the combination adds up, linearly
        if any(p.space not in handed_on for p in parts):
            margin = [spec.estimator or spec.kind
                      for spec, p in zip(self.metadata.members, parts, strict=True)
                      if p.space == MARGIN]  # fmt: skip
            combined = "a weighted average" if self._meta is None else "the meta-learner"
            raise Unexplainable(
                f"{combined} combines the probabilities of {', '.join(margin)}, which "
                "explain in margin space (log-odds): probabilities are not additive in them"
            )
        if self._meta is None:
            base = sum(w * p.base for w, p in zip(self._weights, parts, strict=True))
            values = sum(w * p.values for w, p in zip(self._weights, parts, strict=True))
            return Contributions(parts[0].space, np.asarray(base), np.asarray(values))
        # A linear meta-learner: scores = inputs @ weights + intercept, inputs side by side.
        weights = self._meta.weights  # (inputs, scores)
        base = np.concatenate([p.base for p in parts]) @ weights + self._meta.intercept
        stacked = np.concatenate([p.values for p in parts], axis=1)  # (rows, inputs, features)
        values = np.einsum("rif,is->rsf", stacked, weights)
        space = VALUE if self._meta.link == "identity" else MARGIN
        return Contributions(space, base, values)

    def _predict_network(self, rows: np.ndarray) -> Prediction:
        main, value = self._network_run(rows)
        if not self._answers_value:
            value = None
        if self._one_value:  # a regressor's one value: (n_rows,), as tree models answer
            return Prediction(main[:, 0], None, value)
        return Prediction(main, None, value)

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (n_rows, n_classes), columns in ``classes`` order."""
        if self.task != CLASSIFICATION:
            raise InvalidModel(f"{self.key} is a regression model: it has no probabilities")
        return self.predict(rows).outputs

    def predict_values(self, rows: np.ndarray) -> np.ndarray:
        """A regression model's values, shape (n_rows,)."""
        if self.task != REGRESSION:
            raise InvalidModel(f"{self.key} is a classifier: it answers probabilities")
        return self.predict(rows).outputs
