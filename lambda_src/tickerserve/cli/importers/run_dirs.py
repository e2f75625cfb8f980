"""Seed 001: training runs in ``models/{model_type}/{symbol}/{run_id}/``.

```
models/
  lightgbm/{symbol}/{run_id}/      metadata.json + model.pkl (joblib dict: model, feature_names,
                                   selected_features, feature_count, input_size_actual, ...)
  lightgbm/{symbol}/latest -> {run_id}/   (or latest_pointer.txt where symlinks fail)
  gru/{symbol}/{run_id}/           model.pth (torch.save dict), metadata.json, config.json,
                                   preprocessor.pkl
  ppo/{symbol}/{run_id}/           model.zip (stable-baselines3), model_metadata.json,
                                   model_vecnormalize.pkl, metadata.json
  metadata/best_wf_{model}_{symbol}.{ext}  the walk-forward best artifact
```

Every run of a symbol becomes a version of ``stocks/{SYMBOL}`` (``etfs/{SYMBOL}`` for
``--etfs``; ``.../{model_type}`` when the symbol has runs of several types) in time order
(``created_at``, else the run id); the run ``latest`` names (else the newest) gets ``--alias``
(``production``) and the symbol is routed to the model on the signal named after the model
type (``lightgbm``, the symbol's default; ``--signal`` renames it; ``gru`` and ``ppo`` go
beside it). The run id is
kept in the version's metadata. The saved dict's ``feature_names`` are the selected subset and
``metadata.json``'s the full list with ``selected_features`` indices: requests name features
from the full list and the model gets the selected ones. ``best_wf_{model}_{symbol}.*``
becomes the ``best`` alias (the version it equals, or a version of its own).

GRU and PPO runs are converted to ONNX networks (``network_runs``: torch and
stable-baselines3 on the publisher's machine, the ``networks`` extra) and checked against the
originals; a run that cannot be converted (torch missing, no window recorded and no
``--window``) is skipped with the reason. A walk-forward best checkpoint
(``best_wf_gru_{symbol}.pth``, ``best_wf_ppo_{symbol}.zip``) borrows its symbol's newest run's
window, feature names, preprocessor or VecNormalize statistics.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tickerserve.cli.importers.model_folder import read_folder
from tickerserve.cli.importers.network_runs import kind_of, read_network
from tickerserve.cli.importers.plan import Candidate, ImportOptions, ImportPlan, Skipped, filed
from tickerserve.layout import normalize_ticker, validate_signal
from tickerserve.publishing.conversion.pickles import PICKLE_SUFFIXES
from tickerserve.publishing.conversion.recipe import (
    Converted,
    Recipe,
    convert_pickle,
)
from tickerserve.publishing.release import RouteChange

LAYOUT = "001"
DESCRIPTION = "models/{model_type}/{symbol}/{run_id}/ with latest (or latest_pointer.txt)"
DEFAULT_TYPE = "lightgbm"  # its signal is a symbol's default; gru and ppo go beside it
LATEST = "latest"
POINTER = "latest_pointer.txt"
METADATA_DIR = "metadata"
BEST_ALIAS = "best"
BEST_PREFIX = "best_wf_"


def find_root(path: Path) -> Path | None:
    """``models/`` (at or right under ``path``) with ``{type}/{symbol}/`` run folders."""
    for root in (path, path / "models"):
        for symbol_dir in _symbol_dirs(root):
            if (symbol_dir / POINTER).is_file() or (symbol_dir / LATEST).is_symlink():
                return root
            # (seed 000's etfs/{T}/production/ has a metadata.json too: not a run.)
            if any(
                (run / "metadata.json").is_file() and run.name != "production"
                for run in _runs(symbol_dir)
            ):
                return root
    return None


def _subdirs(path: Path) -> list[Path]:
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.is_symlink())


def _symbol_dirs(root: Path) -> list[Path]:
    return [s for t in _subdirs(root) if t.name != METADATA_DIR for s in _subdirs(t)]


def _runs(symbol_dir: Path) -> list[Path]:
    return [p for p in _subdirs(symbol_dir) if p.name != LATEST]


def plan(root: Path, options: ImportOptions) -> ImportPlan:
    result = ImportPlan(LAYOUT, root)
    importable: dict[str, list[tuple[str, Path]]] = {}  # SYMBOL -> (model_type, symbol dir)
    for type_dir in (t for t in _subdirs(root) if t.name != METADATA_DIR):
        for symbol_dir in _subdirs(type_dir):
            runs = _runs(symbol_dir)
            if not runs:
                continue
            try:
                symbol = normalize_ticker(symbol_dir.name)
            except ValueError as exc:
                for run in runs:
                    result.skipped.append(Skipped(result.relative(run), f"symbol: {exc}"))
                continue
            importable.setdefault(symbol, []).append((type_dir.name, symbol_dir))
    for symbol, found in sorted(importable.items()):
        asset_class, group = filed(symbol, options)
        base = f"{group}/{symbol}"
        # LightGBM first: a symbol new to the registry takes its first signal as its default.
        for model_type, symbol_dir in sorted(found, key=lambda f: (f[0] != DEFAULT_TYPE, f[0])):
            model = base if len(found) == 1 else f"{base}/{model_type}"
            _plan_symbol(result, symbol_dir, model, asset_class, options)
            signal = signal_of(model_type, options)
            if signal is None:
                result.notes.append(
                    f"not routed {symbol} {model_type}: {model_type!r} is not a signal name; "
                    f"route it with tickerserve route {symbol} --model {model} --signal NAME"
                )
                continue
            result.routes.append(RouteChange(symbol, asset_class, model, signal=signal))
    _plan_best(result, root, importable, options)
    return result


def signal_of(model_type: str, options: ImportOptions) -> str | None:
    """The signal a model type's runs route on: ``--signal`` for the LightGBM runs, else the
    type's own name (``lightgbm``; ``gru`` and ``ppo`` beside it), None if it is no signal."""
    if options.signal is not None and model_type == DEFAULT_TYPE:
        return options.signal
    try:
        return validate_signal(model_type.lower())
    except ValueError:
        return None


def _plan_symbol(
    result: ImportPlan, symbol_dir: Path, model: str, asset_class: str, options: ImportOptions
) -> None:
    runs = _runs(symbol_dir)
    ordered = sorted(runs, key=lambda run: (_when(run), run.name))
    latest = _latest(symbol_dir, result)
    names = [run.name for run in ordered]
    if latest is not None and latest not in names:
        result.notes.append(
            f"{result.relative(symbol_dir)}: latest names {latest!r}, which is not a run "
            "folder here; the newest run gets the alias"
        )
        latest = None
    production = latest or (names[-1] if names else None)
    for index, run in enumerate(ordered):

        def converter(run: Path = run) -> Converted:
            return read_folder(run, model=model, asset_class=asset_class,
                               features=options.features, network=options.network)  # fmt: skip

        result.candidates.append(
            Candidate(
                model,
                result.relative(run),
                converter,
                asset_class,
                order=(index,),
                aliases=(options.alias,) if run.name == production else (),
                origin={"run_id": run.name, "model_type": symbol_dir.parent.name},
            )
        )


def _when(run: Path) -> datetime:
    """The run's time: metadata.json's created_at, else the run id, else the folder's mtime."""
    try:
        raw = json.loads((run / "metadata.json").read_text()).get("created_at")
        return _naive(datetime.fromisoformat(str(raw)))
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    try:
        return datetime.strptime(run.name[:15], "%Y%m%d_%H%M%S")
    except ValueError:
        return datetime.fromtimestamp(run.stat().st_mtime)


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None) if value.tzinfo else value


def _latest(symbol_dir: Path, result: ImportPlan) -> str | None:
    """The run ``latest`` names: the symlink's target, else the pointer file's last segment."""
    link = symbol_dir / LATEST
    if link.is_symlink():
        return Path(os.readlink(link).rstrip("/\\")).name
    pointer = symbol_dir / POINTER
    if pointer.is_file():
        text = pointer.read_text().strip().replace("\\", "/").rstrip("/")
        return text.rsplit("/", 1)[-1] or None
    if link.is_dir():
        result.notes.append(
            f"{result.relative(link)} is a folder, not a link: not imported as a run; "
            "the newest run gets the alias"
        )
    return None


# -- walk-forward best artifacts -----------------------------------------------------------
def _plan_best(
    result: ImportPlan,
    root: Path,
    importable: dict[str, list[tuple[str, Path]]],
    options: ImportOptions,
) -> None:
    folder = root / METADATA_DIR
    if not folder.is_dir():
        return
    types = sorted({t.name for t in _subdirs(root) if t.name != METADATA_DIR}, key=len)
    for file in sorted(folder.glob(f"{BEST_PREFIX}*")):
        if not file.is_file():
            continue
        source = result.relative(file)
        network = kind_of(file) is not None  # a GRU checkpoint or a policy zip
        if file.suffix.lower() not in PICKLE_SUFFIXES and not network:
            continue
        parsed = _parse_best(file.stem, types)
        if parsed is None:
            result.skipped.append(Skipped(source, "name is not best_wf_{model}_{symbol}"))
            continue
        model_type, raw_symbol = parsed
        try:
            symbol = normalize_ticker(raw_symbol)
        except ValueError as exc:
            result.skipped.append(Skipped(source, f"symbol: {exc}"))
            continue
        found = importable.get(symbol, [])
        match = [d for t, d in found if t == model_type]
        if not match:
            result.skipped.append(
                Skipped(source, f"no {model_type} runs of {symbol} to attach the best alias to")
            )
            continue
        asset_class, group = filed(symbol, options)
        base = f"{group}/{symbol}"
        model = base if len(found) == 1 else f"{base}/{model_type}"
        result.candidates.append(
            Candidate(
                model,
                source,
                _best_network(file, match[0], model, asset_class, options)
                if network
                else _best_converter(file, match[0], model, asset_class, options),
                asset_class,
                order=(float("inf"),),  # a best artifact that equals no run comes last
                aliases=(BEST_ALIAS,),
                origin={"walk_forward_best": file.name, "model_type": model_type},
            )
        )


def _parse_best(stem: str, types: list[str]) -> tuple[str, str] | None:
    rest = stem.removeprefix(BEST_PREFIX)
    for model_type in sorted(types, key=len, reverse=True):
        if rest.startswith(f"{model_type}_") and len(rest) > len(model_type) + 1:
            return model_type, rest[len(model_type) + 1 :]
    return None


def _best_converter(
    file: Path, symbol_dir: Path, model: str, asset_class: str, options: ImportOptions
) -> Callable[[], Converted]:
    def with_full_names(recipe: Recipe) -> None:
        full = _full_names(symbol_dir)
        wanted = recipe.own_names or recipe.chosen
        # The runs' full list applies if this artifact's own names are a subset of it.
        if full is not None and wanted is not None and set(wanted) <= set(full):
            recipe.full_names = full

    def run() -> Converted:
        return convert_pickle(
            file, model=model, asset_class=asset_class, fallback_names=options.features,
            adjust=with_full_names,
        )  # fmt: skip

    return run


def _best_network(
    file: Path, symbol_dir: Path, model: str, asset_class: str, options: ImportOptions
) -> Callable[[], Converted]:
    """A walk-forward best checkpoint or policy, with its symbol's newest run lending what the
    file alone does not say (window, feature names, preprocessor; VecNormalize statistics)."""

    def run() -> Converted:
        newest = max(_runs(symbol_dir), key=lambda r: (_when(r), r.name))
        converted = read_network(file, model=model, asset_class=asset_class,
                                 features=options.features, options=options.network,
                                 lender=newest)  # fmt: skip
        assert converted is not None  # kind_of said it holds a network
        return converted

    return run


def _full_names(symbol_dir: Path) -> list[str] | None:
    """The full feature list of the symbol's newest run with one (metadata.json)."""
    for run in sorted(_runs(symbol_dir), key=lambda r: (_when(r), r.name), reverse=True):
        try:
            names = json.loads((run / "metadata.json").read_text()).get("feature_names")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            return names
    return None
