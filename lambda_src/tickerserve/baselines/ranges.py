"""Feature ranges: what a version's reference sample spanned, per feature, kept with the
version so the prediction function can warn when a request is unlike it (issue 21).

For each feature the model uses: the reference's ``lo`` and ``hi`` quantiles (by default the
0.1 % and 99.9 % ones, ``DEFAULT_QUANTILES``; ``--range-quantiles LO:HI`` of ``publish``,
``baseline`` and ``import-seed`` sets them) and its share of missing values. An answer warns
about a value outside ``[lo, hi]`` (``out_of_range``) and about a missing value (null) where
the reference had none (``unexpected_missing``).

Fitted from the reference sample together with the baseline (``Baseline.ranges``). A baseline
fitted before ranges existed has none; its ranges are then estimated from its stored CDF
(``estimate``): the nearest stored points at or beyond each quantile, so an estimated range is
never narrower than the quantiles' (its ``estimated`` flag says so).

Where they are kept, so a cold start reads them cheaply (``persistence`` writes them):

- in the version's ``metadata.json`` (its ``ranges`` object) when the baseline is published
  with the version: no extra read at all;
- otherwise in a sidecar beside the version folder, ``{model}/versions/{version}.ranges.json``
  (under ``*/versions/*``, which the function may read), its sha256 recorded in the model's
  digest index as the version's ``ranges.json`` sidecar: written when a baseline is attached
  later (``tickerserve baseline``, ``import-seed`` onto an existing version) and by
  ``tickerserve migrate`` for versions published with a baseline before ranges existed.

Shape (``schema`` 1; one list per feature: ``[lo, hi, missing_share]``, ``lo`` and ``hi`` null
for a feature the reference never had a value for)::

    {"schema": 1, "quantiles": [0.001, 0.999], "estimated": false,
     "features": {"rsi_14": [18.2, 83.9, 0.0], "iv_rank": [0.01, 0.99, 0.02]}}

A reader that finds another schema uses no ranges (the version answers without warnings) and
says why; it never guesses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from tickerserve.errors import IntegrityError
from tickerserve.layout import ranges_sidecar_key
from tickerserve.storage.store import KeyNotFound, Store, sha256_hex

SCHEMA = 1
DEFAULT_QUANTILES = (0.001, 0.999)
Quantiles = tuple[float, float]


class RangesError(ValueError):
    """Ranges that cannot be fitted or read."""


@dataclass(frozen=True)
class FeatureRange:
    """One feature: the reference's quantile range (None: it had no value) and missing share."""

    lo: float | None
    hi: float | None
    missing_share: float

    def to_list(self) -> list[float | None]:
        return [self.lo, self.hi, self.missing_share]

    @classmethod
    def from_list(cls, name: str, raw: Any) -> FeatureRange:
        if not isinstance(raw, list) or len(raw) != 3:
            raise RangesError(f"feature {name!r}: expected [lo, hi, missing_share]")
        lo, hi, share = raw
        if (lo is None) != (hi is None):
            raise RangesError(f"feature {name!r}: lo and hi are both numbers or both null")
        if lo is not None and not (_finite(lo) and _finite(hi) and lo <= hi):
            raise RangesError(f"feature {name!r}: lo and hi must be finite with lo <= hi")
        if not _finite(share) or not 0.0 <= share <= 1.0:
            raise RangesError(f"feature {name!r}: missing_share must be in 0..1")
        return cls(
            None if lo is None else float(lo), None if hi is None else float(hi), float(share)
        )


@dataclass(frozen=True)
class Ranges:
    """Every used feature's range, the quantiles they are, and whether they were estimated."""

    quantiles: Quantiles
    features: dict[str, FeatureRange]
    estimated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "quantiles": list(self.quantiles),
            "estimated": self.estimated,
            "features": {name: r.to_list() for name, r in self.features.items()},
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False).encode() + b"\n"

    @classmethod
    def from_dict(cls, raw: Any) -> Ranges:
        """Validate; another schema or a malformed object raises ``RangesError``."""
        if not isinstance(raw, Mapping):
            raise RangesError("ranges must be an object")
        schema = raw.get("schema")
        if schema != SCHEMA:
            raise RangesError(f"unsupported ranges schema {schema!r} (this reads {SCHEMA})")
        features = raw.get("features")
        if not isinstance(features, Mapping):
            raise RangesError("ranges need a features object")
        estimated = raw.get("estimated", False)
        if not isinstance(estimated, bool):
            raise RangesError("estimated must be true or false")
        return cls(
            check_quantiles(raw.get("quantiles")),
            {str(n): FeatureRange.from_list(str(n), r) for n, r in features.items()},
            estimated,
        )

    @classmethod
    def from_json(cls, data: bytes) -> Ranges:
        try:
            raw = json.loads(data, parse_constant=_no_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RangesError(f"ranges are not JSON: {exc}") from None
        return cls.from_dict(raw)


def check_quantiles(raw: Any) -> Quantiles:
    """``[lo, hi]`` with ``0 <= lo < hi <= 1``; ``RangesError`` otherwise."""
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) != 2:
        raise RangesError("quantiles must be [lo, hi]")
    lo, hi = raw
    if not (_finite(lo) and _finite(hi) and 0.0 <= lo < hi <= 1.0):
        raise RangesError(f"quantiles must satisfy 0 <= lo < hi <= 1, got {lo!r}, {hi!r}")
    return float(lo), float(hi)


def parse_quantiles(text: str) -> Quantiles:
    """``"LO:HI"`` (the command line's spelling, e.g. ``0.001:0.999``) -> quantiles."""
    lo, sep, hi = text.partition(":")
    try:
        if not sep:
            raise ValueError
        values = (float(lo), float(hi))
    except ValueError:
        raise RangesError(f"{text!r}: expected LO:HI, e.g. 0.001:0.999") from None
    return check_quantiles(values)


def fit_ranges(
    names: Sequence[str], x: np.ndarray, quantiles: Quantiles = DEFAULT_QUANTILES
) -> Ranges:
    """The ranges of a reference sample (rows x ``names``, NaN = missing)."""
    quantiles = check_quantiles(quantiles)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(names) or x.shape[0] == 0:
        raise RangesError("the reference needs rows and one column per feature")
    features: dict[str, FeatureRange] = {}
    for j, name in enumerate(names):
        column = x[:, j]
        missing = np.isnan(column)
        present = column[~missing]
        share = float(missing.mean())
        if present.size == 0:
            features[name] = FeatureRange(None, None, share)
            continue
        lo, hi = np.quantile(present, quantiles).tolist()
        features[name] = FeatureRange(lo, hi, share)
    return Ranges(quantiles, features)


class StoredCdf(Protocol):
    """What ``estimate`` reads of a baseline's feature histogram."""

    @property
    def cdf_points(self) -> list[float]: ...
    @property
    def cdf(self) -> list[float]: ...
    @property
    def missing_share(self) -> float: ...


def estimate(
    histograms: Mapping[str, StoredCdf], quantiles: Quantiles = DEFAULT_QUANTILES
) -> Ranges:
    """Ranges read off baseline histograms fitted before ranges existed: ``lo`` is the largest
    stored point whose CDF is at most the lower quantile (else the smallest point, the
    reference's minimum), ``hi`` the smallest point whose CDF reaches the upper one (the
    maximum's is 1), so an estimate is never narrower than the quantiles' range."""
    q_lo, q_hi = check_quantiles(quantiles)
    features: dict[str, FeatureRange] = {}
    for name, hist in histograms.items():
        points, cdf = np.asarray(hist.cdf_points), np.asarray(hist.cdf)
        if points.size == 0:
            features[name] = FeatureRange(None, None, hist.missing_share)
            continue
        below = int(np.searchsorted(cdf, q_lo, side="right")) - 1
        above = min(int(np.searchsorted(cdf, q_hi, side="left")), points.size - 1)
        lo = float(points[max(below, 0)])
        features[name] = FeatureRange(lo, max(lo, float(points[above])), hist.missing_share)
    return Ranges((q_lo, q_hi), features, estimated=True)


def read_sidecar(store: Store, model: str, version: str, recorded: str) -> Ranges:
    """A version's ranges sidecar, checked against the sha256 its digest index records:
    ``IntegrityError`` when it is gone or differs, ``RangesError`` when it does not parse."""
    try:
        blob = store.get(ranges_sidecar_key(model, version))
    except KeyNotFound:
        raise IntegrityError(
            f"{model} {version}: its digest index records a ranges sidecar that is gone"
        ) from None
    assert blob is not None  # an unconditional GET always returns content
    digest = sha256_hex(blob.data)
    if digest != recorded:
        raise IntegrityError(
            f"{model} {version}: ranges sha256 {digest[:12]}… does not match the recorded "
            f"{recorded[:12]}…"
        )
    return Ranges.from_json(blob.data)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed in ranges")
