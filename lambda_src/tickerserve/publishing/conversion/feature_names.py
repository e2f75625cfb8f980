"""Feature names as seeds keep them: the full ordered list requests name, and the subset a
model was trained on (as indices into the full list, or as names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from tickerserve.publishing.conversion import NotConvertible


def all_ints(value: Any) -> bool:
    """A non-empty list of integers (not booleans)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value)
    )


def as_names(value: Any, label: object) -> list[str]:
    if isinstance(value, np.ndarray | tuple):
        value = list(value.tolist() if isinstance(value, np.ndarray) else value)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise NotConvertible(f"{label}: feature names must be a non-empty list of strings")
    return list(value)


def as_ints(value: Any, label: object) -> list[int]:
    if not all_ints(value):
        raise NotConvertible(f"{label}: selected indices must be a non-empty list of integers")
    return [int(i) for i in value]


def selection(
    full: list[str], chosen: list[str] | None, indices: list[int] | None, *, label: object
) -> list[int] | None:
    """The indices of the features the model uses, or None when it uses all of ``full``."""
    if len(set(full)) != len(full):
        raise NotConvertible(f"{label}: feature_names contains duplicates")
    if indices is not None:
        bad = [i for i in indices if not 0 <= i < len(full)]
        if bad:
            raise NotConvertible(
                f"{label}: selected index {bad[0]} is outside the {len(full)} feature names"
            )
        if chosen is not None and [full[i] for i in indices] != chosen:
            raise NotConvertible(
                f"{label}: the selected feature names disagree with the selected indices"
            )
    elif chosen is not None:
        unknown = [n for n in chosen if n not in full]
        if unknown:
            raise NotConvertible(
                f"{label}: selected feature {unknown[0]!r} is not in feature_names"
            )
        indices = [full.index(n) for n in chosen]
    if indices is None or indices == list(range(len(full))):
        return None
    return indices


def read_names_file(path: Path) -> list[str]:
    """``--features FILE``: a JSON list of names (or ``{"feature_names": [...]}``), or plain
    text with one name per line, in the order the model was trained on."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise NotConvertible(f"{path}: cannot read feature names ({exc})") from None
    try:
        raw = json.loads(text)
    except ValueError:
        raw = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(raw, dict):
        raw = next((raw[k] for k in ("feature_names", "features", "columns") if k in raw), None)
    names = as_names(raw, path)
    if len(set(names)) != len(names):
        raise NotConvertible(f"{path}: feature names contain duplicates")
    return names
