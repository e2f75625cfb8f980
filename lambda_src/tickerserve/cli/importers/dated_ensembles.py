"""Seed 002: dated ensembles per symbol and timeframe, ``trained_models/{SYMBOL}_{timeframe}_
{YYYYMMDD}.pkl``: a pickled dict with scikit-learn ``RandomForestClassifier`` and
``GradientBoostingClassifier`` under ``models``, their ``weights``, ``ensemble_accuracy``,
``performances`` and ``model_predictions_sample``.

Each symbol and timeframe becomes ``stocks/{SYMBOL}/{timeframe}`` (``etfs/...`` for ``--etfs``),
a weighted average of the pickled members' probabilities (the seed's other forecasters are
not in the pickle), routed to SYMBOL for that timeframe; ``d1`` is also the symbol's default
route. Dated files become versions in date order (the date is kept in the metadata), and
``--alias`` (``production``) moves through them in that order: the newest is production and
the older ones are its history, so ``rollback`` goes to the previous date. The seed keeps no
feature names: they come from the estimators' ``feature_names_in_`` (fitted on a DataFrame),
else ``--features FILE``, else they are ``feature_0 ... feature_{n-1}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from tickerserve.cli.importers.plan import Candidate, ImportOptions, ImportPlan, Skipped, filed
from tickerserve.layout import normalize_ticker, validate_timeframe
from tickerserve.publishing.conversion.recipe import (
    Converted,
    Recipe,
    convert_pickle,
)
from tickerserve.publishing.release import RouteChange

LAYOUT = "002"
DESCRIPTION = "trained_models/{SYMBOL}_{timeframe}_{YYYYMMDD}.pkl"
FOLDER = "trained_models"
DEFAULT_TIMEFRAME = "d1"
SIGNAL = "direction"  # what seed 002's ensembles predict: the direction over the horizon
_FILE = re.compile(r"(?P<symbol>.+)_(?P<timeframe>[A-Za-z0-9]+)_(?P<date>[0-9]{8})\.pkl")


def find_root(path: Path) -> Path | None:
    """The folder (``trained_models/`` at or right under ``path``) holding dated pickles."""
    for root in (path, path / FOLDER):
        if root.is_dir() and any(_FILE.fullmatch(p.name) for p in root.iterdir() if p.is_file()):
            return root
    return None


def plan(root: Path, options: ImportOptions) -> ImportPlan:
    result = ImportPlan(LAYOUT, root)
    groups: dict[tuple[str, str], list[tuple[str, Path]]] = {}
    for file in sorted(p for p in root.iterdir() if p.is_file() and p.suffix == ".pkl"):
        match = _FILE.fullmatch(file.name)
        if match is None:
            result.skipped.append(
                Skipped(file.name, "name is not {SYMBOL}_{timeframe}_{YYYYMMDD}.pkl")
            )
            continue
        try:
            symbol = normalize_ticker(match["symbol"])
            timeframe = validate_timeframe(match["timeframe"])
            datetime.strptime(match["date"], "%Y%m%d")
        except ValueError as exc:
            result.skipped.append(Skipped(file.name, str(exc)))
            continue
        groups.setdefault((symbol, timeframe), []).append((match["date"], file))
    for (symbol, timeframe), dated in sorted(groups.items()):
        asset_class, group = filed(symbol, options)
        model = f"{group}/{symbol}/{timeframe}"
        dated.sort()
        for index, (date, file) in enumerate(dated):
            result.candidates.append(
                Candidate(
                    model,
                    file.name,
                    _converter(file, date, model, asset_class, options),
                    asset_class,
                    order=(date, index),
                    aliases=(options.alias,),
                    origin={"date": date, "file": file.name},
                )
            )
        signal = options.signal or SIGNAL
        result.routes.append(RouteChange(symbol, asset_class, model, timeframe, signal))
        if timeframe == DEFAULT_TIMEFRAME:
            result.routes.append(RouteChange(symbol, asset_class, model, signal=signal))
    return result


def _converter(
    file: Path, date: str, model: str, asset_class: str, options: ImportOptions
) -> Callable[[], Converted]:
    def dated(recipe: Recipe) -> None:
        recipe.created_at = datetime.strptime(date, "%Y%m%d").date().isoformat()

    def run() -> Converted:
        return convert_pickle(
            file, model=model, asset_class=asset_class, fallback_names=options.features,
            label=file.name, adjust=dated,
        )  # fmt: skip

    return run
