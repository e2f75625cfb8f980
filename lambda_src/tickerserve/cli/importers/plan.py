"""What an importer hands over: one candidate per seed model version (converted later, each on
its own), what it skipped and why, and the routes, shadows, fallbacks and history lines the
import adds. ``publication`` turns a plan into versions and one registry update.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tickerserve.baselines.baseline import DEFAULT_BINS, Baseline
from tickerserve.baselines.ranges import DEFAULT_QUANTILES, Quantiles
from tickerserve.cli.errors import Refused
from tickerserve.cli.importers.network_runs import NetworkOptions
from tickerserve.cli.reference import Table
from tickerserve.layout import ETF_PREFIX, normalize_ticker
from tickerserve.publishing.conversion.recipe import Converted
from tickerserve.publishing.release import RouteChange
from tickerserve.storage.registry import DEFAULT_ALIAS, ShadowSettings


@dataclass(frozen=True)
class ImportOptions:
    """The command line's choices, as every importer reads them (each uses its own)."""

    alias: str = DEFAULT_ALIAS  # what becomes `production` is named this
    etfs: frozenset[str] = frozenset()  # symbols published under etfs/ (001, 002)
    stocks: tuple[str, ...] = ()  # extra stocks routed to stocks/universal (000)
    stock_fallback: bool = False  # stocks/universal becomes the stock fallback (000)
    model: str | None = None  # the model name (003)
    routes: tuple[str, ...] = ()  # TICKER or TICKER=MODEL (003, 004)
    mapping: dict[str, str] = field(default_factory=dict)  # registry name -> model (004)
    skip_existing: bool = False  # 004: versions already in the store are skipped, not refused
    features: list[str] | None = None  # names for models that name none (--features FILE)
    signal: str | None = None  # the signal routes go on (None: the layout's own default)
    # 001, 002: the asset class of symbols not in --etfs (default stock), e.g. crypto
    asset_class: str | None = None
    take_routes: bool = False  # move routes that point at other models (--take-routes)
    # --reference FILE, read once: every imported version gets a baseline fitted from it
    reference: Table | None = None
    bins: int = DEFAULT_BINS
    # 001's GRU runs: --window N (when a run records none) and --torch-module MODULE:CLASS
    network: NetworkOptions = field(default_factory=NetworkOptions)
    range_quantiles: Quantiles = DEFAULT_QUANTILES  # the quantiles bounding feature ranges


@dataclass
class Candidate:
    """One seed model version to publish; ``convert`` runs only when the import does."""

    model: str
    source: str  # where it comes from, relative to the imported folder
    convert: Callable[[], Converted]
    asset_class: str | None = None
    order: tuple[Any, ...] = ()  # time order among the model's candidates
    version: str | None = None  # the seed's own version (004); else the next free one
    aliases: tuple[str, ...] = ()
    origin: dict[str, Any] = field(default_factory=dict)  # run id, date, file: kept in source
    metrics: dict[str, float] = field(default_factory=dict)  # added to the converted ones
    training: dict[str, Any] = field(default_factory=dict)
    # Fields the seed's own history lines have, added to this version's training record (003:
    # model_a and model_b), so the seed's analysis of its history runs on tickerserve's too.
    record: dict[str, Any] = field(default_factory=dict)
    # The seed's own baseline (003: its baseline files), given the one fitted from
    # --reference (None without it); None here: the fitted one as it is.
    baseline: Callable[[Baseline | None], Baseline | None] | None = None


@dataclass(frozen=True)
class Skipped:
    """Something the import found but cannot publish, and why."""

    source: str
    reason: str


@dataclass
class ImportPlan:
    """Everything one import would do."""

    layout: str
    root: Path
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    routes: list[RouteChange] = field(default_factory=list)
    fallbacks: dict[str, str] = field(default_factory=dict)
    shadows: dict[str, ShadowSettings] = field(default_factory=dict)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    registry_found: bool = False  # 000: the tree had metadata/asset_registry.json

    def relative(self, path: Path) -> str:
        """``path`` as the summary shows it: relative to the imported folder."""
        try:
            return str(path.relative_to(self.root)) or "."
        except ValueError:
            return str(path)


def filed(symbol: str, options: ImportOptions) -> tuple[str, str]:
    """A symbol's asset class and the group folder its models go under: ``etf`` and
    ``etfs/`` for --etfs, else ``--asset-class`` (``stock`` and ``stocks/`` by default; another
    class is its own folder: ``crypto/BTCEUR``)."""
    if symbol in options.etfs:
        return "etf", ETF_PREFIX
    asset_class = options.asset_class or "stock"
    return asset_class, "stocks" if asset_class == "stock" else asset_class


def routes_from_flags(options: ImportOptions, models: list[str], signal: str) -> list[RouteChange]:
    """``--route TICKER`` (the one model) or ``--route TICKER=MODEL`` (one of ``models``), on
    ``--signal`` (else ``signal``, the layout's default)."""
    routes = []
    for raw in options.routes:
        ticker_text, sep, target = raw.partition("=")
        try:
            ticker = normalize_ticker(ticker_text)
        except ValueError as exc:
            raise Refused(f"--route {raw!r}: {exc}") from None
        if sep:
            if target not in models:
                raise Refused(
                    f"--route {raw!r}: {target!r} is not a model of this import "
                    f"({', '.join(models)})"
                )
            model = target
        elif len(models) == 1:
            model = models[0]
        else:
            raise Refused(
                f"--route {raw!r}: this import has several models ({', '.join(models)}); "
                "give --route TICKER=MODEL"
            )
        etf = ticker in options.etfs or model.startswith(f"{ETF_PREFIX}/")
        asset_class = "etf" if etf else "stock"
        routes.append(RouteChange(ticker, asset_class, model, signal=options.signal or signal))
    return routes
