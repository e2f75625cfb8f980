"""Seed artifacts as their projects saved them: joblib / pickle files, read on the publisher's
machine only. Unpickling runs arbitrary code: only convert files you trust.

Torch artifacts (seed 001's GRU ``model.pth`` and PPO ``model.zip``) are recognised by name and
refused with the reason, never loaded.
"""

from __future__ import annotations

import io
import pickle
import sys
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
    """joblib, then plain pickle; an unreadable file raises ``NotConvertible`` saying why.

    The file is first unpickled in a forked child (``tickerserve.members.safe_load``): unpickling a
    LightGBM model parses its text in C++, which aborts the whole process on a garbled file,
    and one bad file must not stop an import of many."""
    from tickerserve.errors import InvalidModel
    from tickerserve.members.safe_load import safe_load

    reason = torch_refusal(file)
    if reason is not None:
        raise NotConvertible(f"{file.parent}: {reason}")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise NotConvertible(f"cannot read {file}: {short(exc)}") from None
    try:
        return safe_load(loads, data, what=file.name, child_setup=_child_setup)
    except InvalidModel as exc:  # the child crashed or hung
        why = exc.message.removeprefix(f"{file.name} cannot be loaded: ")
        raise NotConvertible(f"cannot unpickle {file}: {why}") from None
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("torch"):
            message = f"cannot unpickle {file}: it holds torch objects; {NO_TORCH}"
            raise NotConvertible(message) from None
        raise NotConvertible(f"cannot unpickle {file}: {short(exc)}") from None


def loads(data: bytes) -> Any:
    """joblib's format (which also reads plain pickles), else ``pickle.loads``; the first
    error is the one that says what is wrong."""
    import joblib

    with warnings.catch_warnings():
        # Version-skew warnings are moot: the probe comparison decides whether it converts.
        warnings.simplefilter("ignore")
        try:
            return joblib.load(io.BytesIO(data))
        except Exception as exc:
            first = exc
        try:
            return pickle.loads(data)
        except Exception:
            raise first from None


def _child_setup() -> None:
    """Hold LightGBM to one thread in the probe child if this process already used it (see
    ``tickerserve.members.safe_load``: a multi-threaded region after a fork hangs)."""
    if "lightgbm" in sys.modules:
        from tickerserve.members.lightgbm import lightgbm_single_threaded

        lightgbm_single_threaded()


def short(exc: BaseException) -> str:
    """``Type: message`` on one line, at most 160 characters of message."""
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
