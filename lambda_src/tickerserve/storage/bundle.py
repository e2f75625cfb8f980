"""The model bundle: one immutable version folder, its members' artifacts (``model.txt``,
``*.treelite``) and ``metadata.json``. Reading and writing both live here so publisher and
loader agree.

Format 2 (written now) adds the ``task`` (classification or regression), each member's
``kind`` (and a kind's ``options``) and the stacking ``link``; format 1 (LightGBM classifiers)
is read as before. A newer format is refused, never guessed at.

``ranges`` (optional, issue 21) holds each feature's range from the version's baseline, read by
the prediction function to warn about requests unlike the reference; its shape and schema
number are ``baselines.ranges``'s. It adds a key and changes none, so the format stays 2: a
function from before it keeps the key as an unknown field and answers without warnings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from tickerserve.errors import IntegrityError, InvalidModel
from tickerserve.layout import (
    BASELINE_FILE,
    METADATA_FILE,
    Version,
    artifact_key,
    metadata_key,
    validate_artifact_name,
    validate_model_name,
)
from tickerserve.members.kinds import KINDS, ONNX, TASKS, TREELITE, MemberSpec, expected_outputs
from tickerserve.members.linear import LinearModel
from tickerserve.members.network import BOX, DISCRETE, NetworkSpec
from tickerserve.storage.store import PreconditionFailed, Store, sha256_hex

FORMAT = 2
READABLE_FORMATS = (1, 2)
# Artifacts a version carries for the publisher side only (the monitor's baseline): listed
# with their sha256 like every artifact, never downloaded by the prediction function.
# Seed 001's feature_importance.parquet too, kept beside the model for `show --importance`.
MONITOR_ARTIFACTS = frozenset({BASELINE_FILE, "feature_importance.parquet"})
EnsembleMethod = Literal["single", "weighted_average", "stacking"]
ENSEMBLE_METHODS: tuple[str, ...] = ("single", "weighted_average", "stacking")
CLASSIFICATION, REGRESSION = TASKS
# Top-level keys this version understands; others (a newer writer's) are kept as they are.
_KNOWN_KEYS = frozenset(
    {"format", "model", "version", "model_type", "task", "created_at", "asset_class",
     "feature_names", "selected_features", "classes", "metrics", "hyperparameters", "training",
     "ensemble", "artifacts", "source", "accepts_missing", "network", "ranges"}
)  # fmt: skip


@dataclass(frozen=True)
class Artifact:
    size: int
    sha256: str


# Format 1 stacking: softmax(coefficients @ concat(member probabilities) + intercept).
Stacking = LinearModel


@dataclass
class BundleMetadata:
    """Everything ``metadata.json`` holds about one model version."""

    model: str
    version: str
    feature_names: list[str]
    classes: list[str]
    artifacts: dict[str, Artifact]
    members: list[MemberSpec] = field(default_factory=lambda: [MemberSpec("model.txt")])
    method: EnsembleMethod = "single"
    stacking: LinearModel | None = None
    selected_features: list[int] | None = None
    model_type: str = "lightgbm"
    created_at: str = ""
    asset_class: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    task: str = CLASSIFICATION
    accepts_missing: bool = True  # False: the original refused missing values (null)
    network: NetworkSpec | None = None  # an ONNX network's input, outputs and policy
    # Each used feature's range from the baseline published with the version (the shape is
    # ``baselines.ranges``'s, checked where it is used); None: published without one.
    ranges: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # fields a newer writer added

    @property
    def used_features(self) -> list[str]:
        """The names the model consumes, in the order it consumes them."""
        if self.selected_features is None:
            return list(self.feature_names)
        return [self.feature_names[i] for i in self.selected_features]

    @property
    def serving_artifacts(self) -> dict[str, Artifact]:
        """The artifacts the prediction function loads."""
        return {n: a for n, a in self.artifacts.items() if n not in MONITOR_ARTIFACTS}

    @property
    def artifact_bytes(self) -> int:
        return sum(a.size for a in self.artifacts.values())

    @property
    def member_kinds(self) -> list[str]:
        """Each member's kind, in member order (what ``show`` and GET /models/{ticker} list)."""
        return [m.kind for m in self.members]

    def describe_ensemble(self) -> dict[str, Any]:
        """The combination as the API and the CLI show it."""
        out: dict[str, Any] = {
            "method": self.method,
            "members": [
                {"name": m.name or m.artifact, "kind": m.kind, "estimator": m.estimator or None,
                 "weight": m.weight}
                for m in self.members
            ],
        }  # fmt: skip
        if self.stacking is not None:
            out["meta_learner"] = {
                "estimator": self.stacking.estimator or "linear",
                "link": self.stacking.link,
            }
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            **self.extra,
            "format": FORMAT,
            "model": self.model,
            "version": self.version,
            "task": self.task,
            "accepts_missing": self.accepts_missing,
            "model_type": self.model_type,
            "created_at": self.created_at,
            "asset_class": self.asset_class,
            "feature_names": self.feature_names,
            "selected_features": self.selected_features,
            "classes": self.classes,
            "metrics": self.metrics,
            "hyperparameters": self.hyperparameters,
            "training": self.training,
            "ensemble": {
                "method": self.method,
                "members": [m.to_dict() for m in self.members],
            },
            "artifacts": {
                name: {"size": a.size, "sha256": a.sha256}
                for name, a in sorted(self.artifacts.items())
            },
            "source": self.source,
        }
        if self.network is not None:
            out["network"] = self.network.to_dict()
        if self.ranges is not None:
            out["ranges"] = self.ranges
        if self.stacking is not None:
            out["ensemble"]["stacking"] = {
                "coefficients": self.stacking.coefficients,
                "intercept": self.stacking.intercept,
                "link": self.stacking.link,
                "estimator": self.stacking.estimator,
            }
        return out

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False).encode() + b"\n"

    @classmethod
    def from_json(cls, data: bytes) -> BundleMetadata:
        """Parse and validate ``metadata.json``; problems raise ``InvalidModel``."""
        try:
            # NaN/Infinity are not JSON; they would also break the API's strict serializer.
            raw = json.loads(data, parse_constant=_no_constant)
            if not isinstance(raw, dict):
                raise TypeError("top level must be an object")
            return cls.from_dict(raw)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidModel(f"metadata.json is invalid: {exc}") from None

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> BundleMetadata:
        """Formats 1 and 2; a newer format is refused (this version would misread it)."""
        fmt = raw.get("format", 1)
        if fmt not in READABLE_FORMATS:
            raise ValueError(
                f"unsupported bundle format {fmt!r} (this tickerserve reads "
                f"{', '.join(map(str, READABLE_FORMATS))}; upgrade the function first)"
            )
        ensemble = raw.get("ensemble") or {
            "method": "single",
            "members": [{"artifact": "model.txt"}],
        }
        stacking_raw = ensemble.get("stacking")
        task = str(raw.get("task", CLASSIFICATION))
        metadata = cls(
            model=validate_model_name(raw["model"]),
            version=str(Version.parse(raw["version"])),
            feature_names=list(raw["feature_names"]),
            classes=[str(c) for c in raw.get("classes") or []],
            artifacts={
                validate_artifact_name(name): Artifact(int(a["size"]), str(a["sha256"]))
                for name, a in dict(raw["artifacts"]).items()
            },
            members=[MemberSpec.from_dict(m) for m in ensemble["members"]],
            method=ensemble.get("method", "single"),
            stacking=None
            if stacking_raw is None
            else LinearModel(
                [[float(x) for x in row] for row in stacking_raw["coefficients"]],
                [float(x) for x in stacking_raw["intercept"]],
                # Format 1 knew one stacking: softmax over the members' probabilities.
                str(stacking_raw.get("link", "softmax")),
                str(stacking_raw.get("estimator", "")),
            ),
            selected_features=None
            if raw.get("selected_features") is None
            else [int(i) for i in raw["selected_features"]],
            model_type=str(raw.get("model_type", "lightgbm")),
            created_at=str(raw.get("created_at", "")),
            asset_class=raw.get("asset_class"),
            metrics={str(k): float(v) for k, v in dict(raw.get("metrics") or {}).items()},
            hyperparameters=dict(raw.get("hyperparameters") or {}),
            training=dict(raw.get("training") or {}),
            source=dict(raw.get("source") or {}),
            task=task,
            accepts_missing=_flag(raw.get("accepts_missing", True), "accepts_missing"),
            network=None if raw.get("network") is None else NetworkSpec.from_dict(raw["network"]),
            ranges=_object_or_none(raw.get("ranges"), "ranges"),
            extra={k: v for k, v in raw.items() if k not in _KNOWN_KEYS},
        )
        metadata.validate()
        return metadata

    @property
    def n_outputs(self) -> int:
        """Columns of the combined answer: every class's probability, or one value (one per
        named output of a network regressor, or per action dimension of a box policy)."""
        if self.task == REGRESSION and self.network is not None and self.network.outputs:
            return len(self.network.outputs)
        return expected_outputs(self.task, len(self.classes))

    def validate(self) -> None:
        """Structural checks shared by writer and reader; raise ``ValueError``."""
        names = self.feature_names
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError("feature_names must be a non-empty list of strings")
        if len(set(names)) != len(names):
            raise ValueError("feature_names contains duplicates")
        if self.selected_features is not None:
            sel = self.selected_features
            if not sel or len(set(sel)) != len(sel) or not all(0 <= i < len(names) for i in sel):
                raise ValueError(
                    f"selected_features must be distinct indices into the "
                    f"{len(names)} feature_names"
                )
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}")
        if self.task == REGRESSION and self.classes:
            raise ValueError("a regression model has no classes")
        if self.task == CLASSIFICATION and (
            len(self.classes) < 2 or len(set(self.classes)) != len(self.classes)
        ):
            raise ValueError("classes must list at least two distinct labels")
        if self.method not in ENSEMBLE_METHODS:
            raise ValueError(f"ensemble method must be one of {', '.join(ENSEMBLE_METHODS)}")
        if not self.members or (self.method == "single" and len(self.members) != 1):
            raise ValueError("a single model has exactly one member; an ensemble at least one")
        for member in self.members:
            if member.artifact not in self.artifacts:
                raise ValueError(f"member {member.artifact} is not listed in artifacts")
            if not math.isfinite(member.weight) or member.weight <= 0:
                raise ValueError(f"member {member.artifact} needs a positive finite weight")
            if member.kind not in KINDS:
                raise ValueError(
                    f"member {member.artifact}: unknown kind {member.kind!r} "
                    f"(this tickerserve serves {', '.join(KINDS)})"
                )
            if member.kind == TREELITE:
                from tickerserve.members.treelite import check_options

                check_options(member.options, self.task, len(self.classes))
                own = member.options.get("xgboost_model")
                if own is not None and own not in self.artifacts:
                    raise ValueError(f"member {member.artifact}: {own} is not listed in artifacts")
        self._validate_network()
        if len({m.artifact for m in self.members}) != len(self.members):
            raise ValueError("each member needs its own artifact")
        if METADATA_FILE in self.artifacts:
            raise ValueError("metadata.json cannot list itself as an artifact")
        for name, artifact in self.artifacts.items():
            if len(artifact.sha256) != 64 or artifact.size < 0:
                raise ValueError(f"artifact {name} needs a size and a 64-character sha256")
        if self.method == "stacking":
            if self.stacking is None:
                raise ValueError("ensemble method 'stacking' needs coefficients and intercept")
            self.stacking.validate(
                width=self.n_outputs * len(self.members), n_outputs=self.n_outputs, task=self.task
            )
        elif self.stacking is not None:
            raise ValueError("stacking coefficients given but ensemble method is not 'stacking'")
        for key, value in self.metrics.items():
            if not math.isfinite(value):
                raise ValueError(f"metric {key} must be finite")

    def _validate_network(self) -> None:
        """A network is one ONNX member, alone, with the ``network`` object describing it."""
        onnx = [m for m in self.members if m.kind == ONNX]
        network = self.network
        if not onnx:
            if network is not None:
                raise ValueError("network is given but no member is an onnx network")
            return
        if len(self.members) != 1 or self.method != "single":
            raise ValueError("an onnx network is a version's single member")
        if network is None:
            raise ValueError("an onnx member needs the network object (input, shape)")
        from tickerserve.members.onnx import check_options

        member = onnx[0]
        check_options(member.options)
        if tuple(member.options["shape"]) != network.shape:
            raise ValueError(
                f"member {member.artifact} takes shape {member.options['shape']}, network says "
                f"{list(network.shape)}"
            )
        if network.n_features != len(self.used_features):
            raise ValueError(
                f"network rows hold {network.n_features} features but metadata lists "
                f"{len(self.used_features)}"
            )
        pre = member.options.get("preprocessing")
        if pre is not None and pre not in self.artifacts:
            raise ValueError(f"member {member.artifact}: {pre} is not listed in artifacts")
        policy = network.policy
        if self.task == CLASSIFICATION and network.outputs:
            raise ValueError("a classifier's outputs are its classes, not named outputs")
        if policy is not None and policy.action_space == DISCRETE and self.task != CLASSIFICATION:
            raise ValueError("a discrete policy is a classifier over its actions")
        if (
            policy is not None
            and policy.action_space == BOX
            and (self.task != REGRESSION or len(network.outputs) != len(policy.low))
        ):
            raise ValueError("a box policy answers one named output per action dimension")


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be true or false")
    return value


def _object_or_none(value: Any, name: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"{name} must be an object")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in metadata.json")


@dataclass(frozen=True)
class Bundle:
    """A complete version folder in memory: metadata plus the artifact bytes it lists."""

    metadata: BundleMetadata
    files: dict[str, bytes]

    @property
    def metadata_bytes(self) -> bytes:
        return self.metadata.to_json()

    @property
    def metadata_sha256(self) -> str:
        """The digest of this bundle's own serialization: right for a bundle about to be
        written; for one read from a store use ``read_verified_bundle``'s digest."""
        return sha256_hex(self.metadata_bytes)


def make_bundle(metadata: BundleMetadata, files: Mapping[str, bytes]) -> Bundle:
    """Fill in artifact sizes and digests from ``files`` and validate the result."""
    for name in files:
        validate_artifact_name(name)
    metadata.artifacts = {name: Artifact(len(d), sha256_hex(d)) for name, d in files.items()}
    try:
        metadata.validate()
    except ValueError as exc:
        raise InvalidModel(str(exc)) from None
    return Bundle(metadata, dict(files))


def write_bundle(store: Store, bundle: Bundle, *, max_workers: int = 8) -> str:
    """Write a version folder with create-only writes, artifacts first and ``metadata.json``
    last (its presence marks the version complete). Returns the metadata sha256.

    Raises ``PreconditionFailed`` if the version already exists.
    """
    meta = bundle.metadata
    metadata_bytes = bundle.metadata_bytes
    # Existence is checked up front for a clear message; the create-only writes are what
    # actually guarantee a version folder is never overwritten.
    if store.head(metadata_key(meta.model, meta.version)) is not None:
        raise PreconditionFailed(f"{meta.model} {meta.version} already exists")

    def put(name: str) -> None:
        key = artifact_key(meta.model, meta.version, name)
        store.put(key, bundle.files[name], create_only=True)

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        list(pool.map(put, sorted(bundle.files)))
    store.put(
        metadata_key(meta.model, meta.version),
        metadata_bytes,
        create_only=True,
        content_type="application/json",
    )
    return sha256_hex(metadata_bytes)


def read_metadata(
    store: Store, model: str, version: str, *, expected_sha256: str | None = None
) -> tuple[BundleMetadata, str]:
    """Read and validate a version's metadata, checking it against the registry's digest."""
    blob = store.get(metadata_key(model, version))
    assert blob is not None
    return parse_metadata(blob.data, model, version, expected_sha256)


def parse_metadata(
    data: bytes, model: str, version: str, expected_sha256: str | None
) -> tuple[BundleMetadata, str]:
    digest = sha256_hex(data)
    if expected_sha256 is not None and digest != expected_sha256:
        raise IntegrityError(
            f"{model} {version}: metadata.json sha256 {digest[:12]}… does not match the "
            f"{expected_sha256[:12]}… recorded for it"
        )
    metadata = BundleMetadata.from_json(data)
    if metadata.model != model or metadata.version != version:
        raise IntegrityError(
            f"metadata.json at {model} {version} describes {metadata.model} {metadata.version}"
        )
    return metadata, digest


def verify_artifact(metadata: BundleMetadata, name: str, data: bytes) -> None:
    """Raise ``IntegrityError`` unless ``data`` is exactly the artifact the metadata lists."""
    expected = metadata.artifacts[name]
    if len(data) != expected.size or sha256_hex(data) != expected.sha256:
        raise IntegrityError(
            f"{metadata.model} {metadata.version}: artifact {name} fails sha256 verification"
        )


def read_bundle(
    store: Store, model: str, version: str, *, expected_sha256: str | None = None
) -> Bundle:
    """Download and verify a whole version folder (used by the CLI; the runtime caches)."""
    return read_verified_bundle(store, model, version, expected_sha256=expected_sha256)[0]


def read_verified_bundle(
    store: Store, model: str, version: str, *, expected_sha256: str | None = None
) -> tuple[Bundle, str]:
    """Like ``read_bundle``, and also the sha256 of the stored ``metadata.json`` bytes: what a
    registry must record (``Bundle.metadata_sha256`` hashes a re-serialization)."""
    metadata, digest = read_metadata(store, model, version, expected_sha256=expected_sha256)
    files: dict[str, bytes] = {}
    for name in metadata.artifacts:
        blob = store.get(artifact_key(model, version, name), size=metadata.artifacts[name].size)
        assert blob is not None
        verify_artifact(metadata, name, blob.data)
        files[name] = blob.data
    return Bundle(metadata, files), digest
