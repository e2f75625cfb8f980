"""The target of the loop: local (``make test``) unless ``make e2e`` chose a deployed stage.

Steps run in order and build on each other; once one fails, the later ones are skipped
naming it (their results would say nothing)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.targets import Target, local_target


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    if os.environ.get("E2E_TARGET") == "aws":
        from tests.e2e.aws import aws_target_from_env

        yield aws_target_from_env()
        return
    with local_target(tmp_path_factory.mktemp("e2e")) as local:
        yield local


_failed: dict[str, str] = {}


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> None:
    failed = call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception)
    if "incremental" in item.keywords and call.when == "call" and failed:
        _failed.setdefault(str(item.parent.nodeid if item.parent else ""), item.name)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if "incremental" in item.keywords:
        failed = _failed.get(str(item.parent.nodeid if item.parent else ""))
        if failed is not None:
            pytest.skip(f"an earlier step failed: {failed}")
