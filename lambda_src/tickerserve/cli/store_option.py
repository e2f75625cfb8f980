"""The store a command works on, from the global options (``--bucket`` or ``--store``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from tickerserve.errors import ConfigError
from tickerserve.layout import DEFAULT_REGISTRY_KEY, validate_key
from tickerserve.settings import ENV_BUCKET, ENV_STORE_PATH
from tickerserve.storage.store import PUBLISHING, Store, Timeouts, open_store


@dataclass
class Target:
    """Global options; the store is opened on first use so ``--help`` needs none."""

    bucket: str | None = None
    store_path: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    registry_key: str = DEFAULT_REGISTRY_KEY
    # Per store call; ``serve`` switches to the prediction function's (``store.SERVING``).
    timeouts: Timeouts = PUBLISHING
    _store: Store | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        if self._store is None:
            if not self.bucket and not self.store_path:
                raise ConfigError(
                    f"no model store: pass --bucket NAME or --store PATH "
                    f"(or set {ENV_BUCKET} / {ENV_STORE_PATH})"
                )
            validate_key(self.registry_key)
            self._store = open_store(
                bucket=self.bucket,
                store_path=self.store_path,
                endpoint_url=self.endpoint_url,
                region=self.region,
                timeouts=self.timeouts,
            )
        return self._store


def target(ctx: typer.Context) -> Target:
    """The ``Target`` the root callback stored on the context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, Target):  # a command invoked without the root callback (tests)
        obj = Target()
        ctx.find_root().obj = obj
    return obj
