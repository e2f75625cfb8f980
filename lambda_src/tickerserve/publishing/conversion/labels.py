"""Class labels in output order. Seeds trained classifiers on encoded integers and kept the
strings in a pickled ``LabelEncoder`` (or listed them in metadata); the bundle stores the
strings so the function never needs the encoder."""

from __future__ import annotations

from typing import Any

import numpy as np

from tickerserve.publishing.conversion import NotConvertible


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def class_labels(
    classes: list[Any],
    *,
    encoder: Any = None,
    listed: list[Any] | None = None,
    indices_only: bool = False,
    notes: list[str],
    label: object,
) -> list[str]:
    """``classes`` are the estimator's own class values in output order (a raw LightGBM
    Booster's are ``0..k-1``: ``indices_only``); the encoder's (or listed) names replace
    integer classes."""
    if encoder is not None and not hasattr(encoder, "classes_"):
        raise NotConvertible(
            f"{label}: the label encoder has no classes_ (got {type(encoder).__name__})"
        )
    names = None if encoder is None else list(np.asarray(encoder.classes_))
    what = "the label encoder"
    if names is None and isinstance(listed, list) and len(listed) >= 2:
        names, what = listed, "the listed classes"
    if indices_only and names is not None and len(names) != len(classes):
        raise NotConvertible(
            f"{label}: the model outputs {len(classes)} classes but {what} lists {len(names)}"
        )
    if all(_is_int(c) for c in classes):
        if names is None:
            notes.append("no label encoder: class labels are the model's integer classes")
            return [str(int(c)) for c in classes]
        bad = [int(c) for c in classes if not 0 <= int(c) < len(names)]
        if bad:
            raise NotConvertible(
                f"{label}: unknown class label {bad[0]}: {what} knows {len(names)} classes"
            )
        return [str(_plain(names[int(c)])) for c in classes]
    if encoder is not None:
        unknown = [c for c in classes if c not in names]  # type: ignore[operator]
        if unknown:
            raise NotConvertible(
                f"{label}: unknown class label {_plain(unknown[0])!r}: not in the label encoder"
            )
    return [str(_plain(c)) for c in classes]


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
