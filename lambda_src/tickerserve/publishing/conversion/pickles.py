"""Seed artifacts as their projects saved them: joblib / pickle files, read on the publisher's
machine only. Unpickling runs arbitrary code: only convert files you trust.

Torch artifacts (seed 001's GRU ``model.pth`` and PPO ``model.zip``) are networks, converted to
ONNX from the checkpoint or its run folder (``conversion.gru_runs``, ``conversion.ppo_runs``),
never unpickled here: one under another name is refused, saying what to give instead.
"""

from __future__ import annotations

import io
import pickle
import re
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from tickerserve.publishing.conversion import NotConvertible

PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
# Suffix -> what the file holds and how it is converted, for the refusal message.
TORCH_SUFFIXES = {
    ".pth": ("a PyTorch model (torch.save, e.g. a GRU)", "model.pth"),
    ".pt": ("a PyTorch model (torch.save)", "model.pth"),
    ".zip": ("a Stable-Baselines3 model (e.g. PPO, on torch)", "model.zip"),
}
NO_TORCH = (
    "networks are converted from a GRU checkpoint (model.pth) or a PPO policy (model.zip), "
    "not from a pickle"
)


def torch_refusal(file: Path) -> str | None:
    """The reason ``file`` is not read as a model where it lies, if it is a torch artifact:
    what to publish instead. None for other files."""
    found = TORCH_SUFFIXES.get(file.suffix.lower())
    if found is None:
        return None
    what, name = found
    return (
        f"{file.name} is {what}: publish the file itself, or its run folder with the file "
        f"named {name}"
    )


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
        raise NotConvertible(f"cannot unpickle {file}: {why}{version_advice(data, exc)}") from None
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").startswith("torch"):
            message = f"cannot unpickle {file}: it holds torch objects; {NO_TORCH}"
            raise NotConvertible(message) from None
        advice = version_advice(data, exc)
        raise NotConvertible(f"cannot unpickle {file}: {short(exc)}{advice}") from None


# -- which library version wrote a pickle --------------------------------------------------------
# Library -> its distributions on PyPI (the first one installed is the one this machine has).
DISTRIBUTIONS = {
    "scikit-learn": ("scikit-learn",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "lightgbm": ("lightgbm",),
}
_MODULES = {"sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm"}
_MODULE_RE = re.compile(rb"(sklearn|xgboost|lightgbm)[.\n]")
_VERSION = rb"([0-9]+\.[0-9]+(?:\.[0-9]+)?(?:(?:rc|a|b|\.post|\.dev)[0-9]+)?)"
# Every scikit-learn-API estimator (LightGBM's and XGBoost's wrappers too) pickles
# ``_sklearn_version``; the string's opcode and length byte sit between key and value.
_SKLEARN_RE = re.compile(rb"_sklearn_version.{1,12}?" + _VERSION, re.DOTALL)
# XGBoost's booster travels as UBJSON with ``"version": [major, minor, patch]`` (int8 each).
_XGBOOST_RE = re.compile(rb"version\[#L\x00{7}\x03[iU](.)[iU](.)[iU](.)", re.DOTALL)


def written_by(data: bytes) -> dict[str, str | None]:
    """The libraries a pickle refers to, with the version that wrote it where the pickle says
    (scikit-learn: ``_sklearn_version``; XGBoost: its booster's version; LightGBM records only
    its model format, so its wrapper's scikit-learn version is what there is)."""
    found: dict[str, str | None] = {_MODULES[m.decode()]: None for m in _MODULE_RE.findall(data)}
    sklearn = _SKLEARN_RE.search(data)
    if sklearn is not None:
        found["scikit-learn"] = sklearn[1].decode()
    booster = _XGBOOST_RE.search(data)
    if booster is not None and "xgboost" in found:
        found["xgboost"] = ".".join(str(b[0]) for b in booster.groups())
    return found


def installed(library: str) -> str | None:
    """The version of ``library`` this machine has, None when it has none."""
    for name in DISTRIBUTIONS[library]:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def version_advice(data: bytes, exc: BaseException) -> str:
    """What to tell someone whose pickle does not load here: the library versions that wrote
    it, where they differ from (or are missing on) this machine, and the exact ``pip install``
    line that reads it. Empty when the versions agree (the failure is something else)."""
    recorded = written_by(data)
    missing = re.search(r"No module named '([A-Za-z0-9_]+)", str(exc))
    if missing is not None and missing[1] in _MODULES:
        recorded.setdefault(_MODULES[missing[1]], None)
    wanted, said = [], []
    for library, version in recorded.items():
        have = installed(library)
        if have is None:
            wanted.append(f"{library}=={version}" if version else library)
            said.append(f"{library} {version or ''}".rstrip() + " (not installed here)")
        elif version is not None and version != have:
            wanted.append(f"{library}=={version}")
            said.append(f"{library} {version} (this machine has {have})")
    if not wanted:
        return ""
    line = " ".join('"' + w + '"' for w in wanted)
    return (
        f"; it was written by {', '.join(said)}: read it with "
        f"`pip install {line}` (e.g. in "
        "a separate virtualenv), or load and save it again with this machine's versions"
    )


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
