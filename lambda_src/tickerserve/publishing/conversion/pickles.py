"""Seed artifacts as their projects saved them: joblib / pickle files, read on the publisher's
machine only. Unpickling runs arbitrary code: only convert files you trust.

Torch artifacts (seed 001's GRU ``model.pth`` and PPO ``model.zip``) are recognised by name and
refused with the reason, never loaded.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

from tickerserve.publishing.conversion import NotConvertible

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
# Suffix -> what the file holds, for the refusal message.
TORCH_SUFFIXES = {
    ".pth": "a PyTorch model (torch.save, e.g. a GRU)",
    ".pt": "a PyTorch model (torch.save)",
    ".zip": "a Stable-Baselines3 model (e.g. PPO, on torch)",
}
NO_TORCH = (
    "the zip-packaged prediction function does not serve torch models "
    "(PyTorch alone is larger than Lambda's 250 MB unzipped limit)"
)


def torch_refusal(file: Path) -> str | None:
    """The reason ``file`` is not imported if it is a torch artifact, else None."""
    what = TORCH_SUFFIXES.get(file.suffix.lower())
    return None if what is None else f"{file.name} is {what}: not imported, because {NO_TORCH}"


def unpickle(file: Path) -> Any:
    """joblib, then plain pickle; an unreadable file raises ``NotConvertible`` saying why."""
    import joblib

    reason = torch_refusal(file)
    if reason is not None:
        raise NotConvertible(f"{file.parent}: {reason}")
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
            pass
    if isinstance(first, ModuleNotFoundError) and first.name and first.name.startswith("torch"):
        raise NotConvertible(f"cannot unpickle {file}: it holds torch objects; {NO_TORCH}")
    raise NotConvertible(f"cannot unpickle {file}: {short(first)}")


def short(exc: BaseException) -> str:
    """``Type: message`` on one line, at most 160 characters of message."""
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
