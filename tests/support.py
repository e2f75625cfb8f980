"""Helpers shared by the test layers: demo models, populated stores, a moto server, events."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tickerserve.cli.moto_process import moto_server as moto_server_process
from tickerserve.layout import DEFAULT_REGISTRY_KEY
from tickerserve.publishing.demo import demo_bundle
from tickerserve.publishing.release import publish_bundle
from tickerserve.storage.bundle import Bundle, make_bundle
from tickerserve.storage.store import LocalStore, Store

EVENTS = Path(__file__).parent / "events"
REGISTRY_KEY = DEFAULT_REGISTRY_KEY


@dataclass(frozen=True)
class DemoModels:
    """Bundles trained once per test session."""

    smh: Bundle  # an ETF with selected_features (uses 6 of 12 features)
    smh_v2: Bundle  # a second SMH version, trained differently
    spy: Bundle  # an ETF using all features
    universal: Bundle  # the shared stock model, 5 classes
    binary: Bundle  # a two-class model (LightGBM binary objective)


def train_demo_models() -> DemoModels:
    return DemoModels(
        smh=demo_bundle("etfs/SMH", "1.0.0", seed=1, selected_features=[0, 2, 4, 6, 8, 10]),
        smh_v2=demo_bundle("etfs/SMH", "1.0.1", seed=2, selected_features=[0, 2, 4, 6, 8, 10]),
        spy=demo_bundle("etfs/SPY", "1.0.0", seed=3),
        universal=demo_bundle("stocks/universal", "1.0.0", seed=4, n_classes=5),
        binary=demo_bundle("etfs/TLT", "1.0.0", seed=5, n_classes=2),
    )


def populate(store: Store, models: DemoModels) -> None:
    """Publish SMH, SPY, TLT and the universal model; route AAPL and MSFT to universal."""
    publish_bundle(store, models.smh, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    publish_bundle(store, models.spy, registry_key=REGISTRY_KEY, routes={"SPY": "etf"})
    publish_bundle(store, models.binary, registry_key=REGISTRY_KEY, routes={"TLT": "etf"})
    publish_bundle(
        store,
        models.universal,
        registry_key=REGISTRY_KEY,
        routes={"AAPL": "stock", "MSFT": "stock"},
    )


def load_event(name: str) -> dict[str, Any]:
    """A real API Gateway event from tests/events/."""
    return json.loads((EVENTS / name).read_text())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto S3 server in its own process on 127.0.0.1 (the one ``make serve`` starts)."""
    with moto_server_process("127.0.0.1", free_port()) as endpoint:
        yield endpoint


class FakeClock:
    """A monotonic clock the test moves by hand (registry TTL, retry back-off)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RequestCounter:
    """Counts S3 API calls made through a boto3 client, by operation name."""

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        client.meta.events.register("before-call.s3", self._record)

    def _record(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def reset(self) -> None:
        self.calls.clear()


def garbled_model_texts(text: bytes) -> dict[str, bytes]:
    """Real malformed variants of a LightGBM ``model.txt`` that LightGBM cannot parse; most
    make ``Booster(model_str=...)`` abort the process from C++."""
    tree = text.index(b"\nTree=0\n")
    leaves = text.index(b"\nleaf_value=", tree) + len(b"\nleaf_value=")
    leaves_end = text.index(b"\n", leaves)
    flipped = bytearray(text)
    for i in range(leaves, leaves_end, 7):
        flipped[i] ^= 0x40  # digits become letters, same length: the tree sizes still add up
    return {
        "truncated": text[: len(text) // 2],
        "num_leaves=abc": re.sub(rb"num_leaves=\d+", b"num_leaves=abc", text, count=1),
        "garbled leaf values": text[:leaves] + b"x" * (leaves_end - leaves) + text[leaves_end:],
        "flipped bytes": bytes(flipped),
    }


GARBLED_KINDS = ["truncated", "num_leaves=abc", "garbled leaf values", "flipped bytes"]
# LightGBM aborts (SIGABRT, after a "[LightGBM] [Fatal]" line) or, depending on what the
# memory around the parser holds, dies of SIGSEGV: either way the loader crashed.
CRASHED = "model.txt cannot be loaded: the loader crashed (SIG"


def garbled_bundle(models: DemoModels, kind: str, version: str = "1.0.1") -> Bundle:
    """SMH with a malformed ``model.txt`` (one of ``GARBLED_KINDS``) whose sha256 is recorded
    correctly: only LightGBM itself can tell."""
    text = garbled_model_texts(models.smh.files["model.txt"])[kind]
    return make_bundle(
        dataclasses.replace(models.smh.metadata, version=version), {"model.txt": text}
    )


def published_smh(root: Path, models: DemoModels) -> LocalStore:
    """A folder store with SMH 1.0.0 in production, routed."""
    local = LocalStore(root)
    publish_bundle(local, models.smh, registry_key=REGISTRY_KEY, routes={"SMH": "etf"})
    return local
