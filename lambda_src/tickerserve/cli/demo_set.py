"""The demo models ``make serve`` publishes: every demo ETF with its own model and the shared
stock model, trained on generated data and kept as native bundle folders (model.txt +
metadata.json) that ``tickerserve publish`` takes as they are.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tickerserve.layout import ETF_PREFIX, METADATA_FILE, UNIVERSAL_STOCK_MODEL
from tickerserve.publishing.demo import DEMO_ETFS, DEMO_STOCKS, demo_bundle
from tickerserve.storage.bundle import Bundle


@dataclass(frozen=True)
class DemoModel:
    """One model to train and the tickers routed to it."""

    name: str
    tickers: tuple[str, ...]
    seed: int
    n_classes: int

    @property
    def asset_class(self) -> str:
        return "etf" if self.name.startswith(f"{ETF_PREFIX}/") else "stock"

    def bundle(self) -> Bundle:
        """Train the model (a fraction of a second) and wrap it as a bundle."""
        return demo_bundle(
            self.name,
            "1.0.0",
            seed=self.seed,
            n_classes=self.n_classes,
            asset_class=self.asset_class,
        )


# Every model takes the same twelve features (publishing.demo.FEATURES), so one example body
# works for any demo ticker; the stock model knows all five strategies.
DEMO_MODELS: tuple[DemoModel, ...] = (
    *(
        DemoModel(f"{ETF_PREFIX}/{t}", (t,), seed=10 + i, n_classes=4)
        for i, t in enumerate(DEMO_ETFS)
    ),
    DemoModel(UNIVERSAL_STOCK_MODEL, tuple(DEMO_STOCKS), seed=20, n_classes=5),
)


def write_bundle_folder(bundle: Bundle, folder: Path) -> None:
    """Write a bundle as a publishable folder, atomically: an interrupted write leaves nothing."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        for name, data in bundle.files.items():
            (staging / name).write_bytes(data)
        (staging / METADATA_FILE).write_bytes(bundle.metadata_bytes)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def ensure_demo_folders(root: Path, models: tuple[DemoModel, ...] = DEMO_MODELS) -> dict[str, Path]:
    """The bundle folder of every demo model under ``root``, training those not there yet."""
    folders: dict[str, Path] = {}
    for model in models:
        folder = root / model.name
        if not (folder / METADATA_FILE).is_file():
            shutil.rmtree(folder, ignore_errors=True)  # not written by us: start over
            write_bundle_folder(model.bundle(), folder)
        folders[model.name] = folder
    return folders
