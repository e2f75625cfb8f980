"""Traffic decisions per request, from the registry's per-model settings: which alias answers
(canary), which alias is scored beside it (shadow) and whether the row is captured (sample).

Every decision is a deterministic hash of the request id, each with its own salt, so a retried
request gets the same version, and shadow and canary choices are independent of each other
and of capture sampling. A request that pins ``alias`` or ``version`` is never diverted or
shadowed: it gets exactly what it asked for.

Challengers are scored by ``Challengers``, which never waits for storage: a challenger that is
not in memory yet is loaded by a background thread while the request goes on without it.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tickerserve.errors import NotFound, TickerserveError
from tickerserve.metric_names import PREDICTION
from tickerserve.serving.capture import output_of
from tickerserve.serving.features import FeatureSchema
from tickerserve.serving.model import LoadedModel, ModelKey, Prediction
from tickerserve.serving.network_answers import network_answer
from tickerserve.serving.windows import WindowSchema
from tickerserve.storage.registry import ModelEntry, Registry, Resolved

logger = logging.getLogger(__name__)

CAPTURE_SALT = b"capture"
SHADOW_SALT = b"shadow"
CANARY_SALT = b"canary"
LOADING = "loading"  # a challenger's entry while its version is being loaded in the background
_SCALE = float(2**64)
# A row as the answering model aligned it, with that model's schema: a challenger with the same
# inputs predicts on it instead of aligning the request's features again.
Aligned = tuple[FeatureSchema | WindowSchema, np.ndarray]


def share(request_id: str, salt: bytes) -> float:
    """Where ``request_id`` falls in [0, 1) for one kind of decision (uniform over ids)."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=8, salt=salt).digest()
    return int.from_bytes(digest, "big") / _SCALE


def chosen(request_id: str, rate: float, salt: bytes) -> bool:
    """Whether the request falls in the share ``rate`` (0 never, 1 always)."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return share(request_id, salt) < rate


@dataclass(frozen=True)
class Decision:
    """What serves one request and what is recorded of it."""

    champion: Resolved  # the version the request resolves to without a canary
    answer: Resolved  # who answers: the champion, or the canary for its share
    role: str  # "champion" or "canary"
    shadow: str | None  # the alias scored beside the answer, if any
    capture: bool  # whether a capture record is written
    canary_missing: bool = False  # the canary alias names no version: the champion answers

    def to_champion(self) -> Decision:
        """The decision when the canary cannot answer: the champion does, and a shadow that
        was to score the champion scores the canary's alias instead."""
        shadow = self.answer.alias if self.shadow == self.champion.alias else self.shadow
        return replace(self, answer=self.champion, role="champion", shadow=shadow)


def decide(
    registry: Registry,
    champion: Resolved,
    request_id: str,
    *,
    pinned: bool,
    capture: bool,
) -> Decision:
    """The traffic decision for ``champion`` (the model and version the route resolved to).

    Shadow needs capture on: its output goes nowhere else. A shadowed row is always captured.
    When the canary answers with the shadow's alias, the shadow scores the champion instead
    ("canary decides who answers, shadow scores the other").
    """
    return _decide(registry, champion, request_id, pinned=pinned, capture=capture)[0]


def fixed_decision(
    registry: Registry, champion: Resolved, *, pinned: bool, capture: bool
) -> Decision | None:
    """The decision every request id gets for ``champion``, when no rate that applies leaves
    anything to chance (each is 0 or 1, or there is none); None when ids decide. A warm
    request then reuses one decision instead of making one."""
    decision, by_chance = _decide(registry, champion, "", pinned=pinned, capture=capture)
    return None if by_chance else decision


def _decide(
    registry: Registry,
    champion: Resolved,
    request_id: str,
    *,
    pinned: bool,
    capture: bool,
) -> tuple[Decision, bool]:
    """``decide``'s decision, and whether the request id took part in it (a rate strictly
    between 0 and 1 was drawn: ``chosen`` hashes the id for those alone)."""
    by_chance = False

    def draw(rate: float, salt: bytes) -> bool:
        nonlocal by_chance
        by_chance = by_chance or 0.0 < rate < 1.0
        return chosen(request_id, rate, salt)

    entry = registry.models.get(champion.model)
    if entry is None:
        return Decision(champion, champion, "champion", None, capture), by_chance
    # An invalid setting acts as off: an invalid capture sample captures none of the rows
    # (an invalid shadow or canary is None already).
    sample = entry.capture.sample if entry.capture is not None else 1.0
    if "capture" in entry.invalid:
        sample = 0.0
    captured = capture and draw(sample, CAPTURE_SALT)
    if pinned:
        return Decision(champion, champion, "champion", None, captured), by_chance
    answer, role, missing = champion, "champion", False
    canary = entry.canary
    if canary is not None and canary.alias != champion.alias and draw(canary.weight, CANARY_SALT):
        target = entry.aliases.get(canary.alias)
        if target is None:
            missing = True
        else:
            answer = Resolved(champion.model, target.version, canary.alias, target.metadata_sha256)
            role = "canary"
    shadow_alias = None
    shadow = entry.shadow
    if capture and shadow is not None and draw(shadow.sample, SHADOW_SALT):
        if shadow.alias != answer.alias:
            shadow_alias = shadow.alias
        elif role == "canary":
            shadow_alias = champion.alias
        captured = captured or shadow_alias is not None
    return Decision(champion, answer, role, shadow_alias, captured, missing), by_chance


def describe_settings(entry: ModelEntry | None) -> dict[str, Any]:
    """A model's capture, shadow and canary settings with the versions their aliases name
    (``version`` None: the alias names no version, so the champion answers alone)."""
    if entry is None:
        return {"capture": {"sample": 1.0}, "shadow": None, "canary": None}
    invalid = {name: bad.problem for name, bad in entry.invalid.items()}

    def version(alias: str) -> str | None:
        target = entry.aliases.get(alias)
        return target.version if target is not None else None

    shadow, canary = entry.shadow, entry.canary
    sample = entry.capture.sample if entry.capture is not None else 1.0
    return {
        **({"invalid": invalid} if invalid else {}),
        "capture": {"sample": 0.0 if "capture" in invalid else sample},
        "shadow": None
        if shadow is None
        else {"alias": shadow.alias, "sample": shadow.sample, "version": version(shadow.alias)},
        "canary": None
        if canary is None
        else {"alias": canary.alias, "weight": canary.weight, "version": version(canary.alias)},
    }


def model_output(model: LoadedModel, result: Prediction, position: int) -> dict[str, Any]:
    """One row's output as a capture record holds it: label and probabilities, or value."""
    if model.network is not None:
        answer = network_answer({}, model.network, model.task, model.classes, result, position)
        return output_of(answer)[1]
    outputs = result.outputs[position]
    if model.task == "regression":
        return {"value": float(outputs)}
    probabilities = outputs.tolist()
    best = probabilities.index(max(probabilities))  # the first maximum, as argmax
    return {
        "label": model.classes[best],
        "probabilities": dict(zip(model.classes, probabilities, strict=True)),
    }


class Challengers:
    """Scores a model's shadow alias on the champion's rows.

    Never raises and never waits for storage: an alias that names no version, a version that
    cannot be loaded or rows the challenger cannot take become ``{"alias", "error"}`` entries
    and count as ``ShadowFailures``; a version not in memory yet is loaded by one background
    thread while its entries say ``loading``.
    """

    def __init__(self, service: Any) -> None:
        self.service = service  # a ModelService (typed loosely: no import cycle)
        self._queue: queue.Queue[Resolved] = queue.Queue()
        self._pending: set[ModelKey] = set()
        self._errors: dict[ModelKey, str] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        # (model, alias) -> version and its key, for the registry object last seen (a new
        # registry clears it): a warm shadow resolves nothing twice
        self._registry: Registry | None = None
        self._resolved: dict[tuple[str, str], tuple[Resolved, ModelKey]] = {}

    def score(
        self,
        model: str,
        alias: str,
        features: Sequence[Any],
        aligned: Sequence[Aligned | None] | None = None,
    ) -> list[dict[str, Any]]:
        """One challenger entry per row of ``features`` (the request bodies' features).
        ``aligned`` holds each row as the answering model aligned it, if known."""
        try:
            try:
                resolved, key = self._resolve(model, alias)
            except NotFound:
                return self._failed(alias, None, "unknown_alias", len(features))
            loaded = self.service.in_memory(resolved, key)
            if loaded is None:
                error = self._errors.get(key)
                self._load_later(resolved)
                if error is None:
                    pending = {"alias": alias, "version": resolved.version, "error": LOADING}
                    return [dict(pending) for _ in features]
                return self._failed(alias, resolved.version, error, len(features))
            return self._predict(loaded, alias, resolved.version, features, aligned)
        except Exception:  # a challenger must never fail the request
            logger.exception("shadow scoring of %s %s failed", model, alias)
            return self._failed(alias, None, "internal_error", len(features))

    def _resolve(self, model: str, alias: str) -> tuple[Resolved, ModelKey]:
        registry = self.service.registry()
        if registry is not self._registry:
            self._registry, self._resolved = registry, {}
        found = self._resolved.get((model, alias))
        if found is None:
            resolved = registry.resolve(model, alias=alias)
            found = (resolved, ModelKey(resolved.model, resolved.version))
            self._resolved[(model, alias)] = found
        return found

    def _predict(
        self,
        model: LoadedModel,
        alias: str,
        version: str,
        features: Sequence[Any],
        aligned: Sequence[Aligned | None] | None,
    ) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = [{} for _ in features]
        rows: list[np.ndarray] = []
        positions: list[int] = []
        schema = model.schema
        for index, raw in enumerate(features):
            given = aligned[index] if aligned is not None else None
            if given is not None and schema.same_input(given[0]):
                rows.append(given[1])  # the same inputs: the answer's row is this model's too
                positions.append(index)
                continue
            try:
                rows.append(schema.row(raw))
                positions.append(index)
            except TickerserveError as exc:  # the challenger needs other features
                entries[index] = self._failed(alias, version, exc.code, 1)[0]
        if rows:
            matrix = rows[0].reshape(1, -1) if len(rows) == 1 else np.vstack(rows)
            started = time.perf_counter_ns()
            try:
                result = model.predict(matrix)
            except Exception:
                logger.exception("challenger %s %s could not predict", model.key, alias)
                for index in positions:
                    entries[index] = self._failed(alias, version, "prediction_failed", 1)[0]
                return entries
            latency_us = (time.perf_counter_ns() - started) // 1000
            for position, index in enumerate(positions):
                entries[index] = {
                    "alias": alias,
                    "version": version,
                    "output": model_output(model, result, position),
                    "latency_us": latency_us,
                }
        return entries

    def _failed(self, alias: str, version: str | None, code: str, n: int) -> list[dict[str, Any]]:
        for _ in range(n):
            self.service.count("shadow_failures", PREDICTION.shadow_failures)
        entry: dict[str, Any] = {"alias": alias, "error": code}
        if version is not None:
            entry["version"] = version
        return [dict(entry) for _ in range(n)]

    # -- background loading ------------------------------------------------------------------
    def _load_later(self, resolved: Resolved) -> None:
        key = ModelKey(resolved.model, resolved.version)
        with self._lock:
            if key in self._pending:
                return
            self._pending.add(key)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="challenger-loader", daemon=True
                )
                self._thread.start()
        self._queue.put(resolved)

    def _run(self) -> None:
        while True:
            resolved = self._queue.get()
            key = ModelKey(resolved.model, resolved.version)
            try:
                # Loaded as a pinned version: a challenger never falls back to an older one.
                self.service.load(replace(resolved, alias=None))
                error = None
            except TickerserveError as exc:
                error = exc.code
            except Exception:
                logger.exception("challenger %s could not be loaded", key)
                error = "invalid_model"
            with self._lock:
                if error is None:
                    self._errors.pop(key, None)
                else:
                    self._errors[key] = error
                self._pending.discard(key)
                self._idle.notify_all()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no challenger is being loaded (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True
