"""Model names as people type them: one stored spelling (``etfs/smh`` is ``etfs/SMH``), and
a hint instead of a second model when a bare ticker is given (``SMH``)."""

from __future__ import annotations

from tickerserve.cli.errors import Refused
from tickerserve.cli.store_option import Target
from tickerserve.errors import TickerserveError
from tickerserve.layout import ETF_PREFIX, canonical_model_name, normalize_ticker
from tickerserve.storage.registry import read_registry


def model_name(raw: str, t: Target) -> str:
    """``raw`` in its canonical spelling; a bare ticker is refused with the model that serves
    it as a hint (``did you mean etfs/SMH?``)."""
    try:
        return canonical_model_name(raw)
    except ValueError as exc:
        if "/" in raw:
            raise Refused(str(exc)) from None
        raise Refused(f"{exc}; did you mean {_suggestion(raw, t)}?") from None


def _suggestion(raw: str, t: Target) -> str:
    """The model the registry routes the ticker to, else the ETF model of that name."""
    try:
        ticker = normalize_ticker(raw)
    except ValueError:
        return f"{ETF_PREFIX}/{raw.strip()}"
    try:
        route = read_registry(t.store, t.registry_key).registry.tickers.get(ticker)
    except TickerserveError:  # no registry yet, or unreachable: the hint still helps
        route = None
    if route is not None and route.model:
        return route.model
    return f"{ETF_PREFIX}/{ticker}"
