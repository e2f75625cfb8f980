"""Fixtures shared by every test layer. Nothing here ever reaches real AWS."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from tests.support import DemoModels, moto_server, train_demo_models
from tickerserve.settings import ENV_NAMES, MONITOR_ENV_NAMES
from tickerserve.storage.store import S3Store

# Dummy credentials before any boto3 client exists, so nothing can sign a real request.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
)
# Nor may a developer's own tickerserve settings leak into what the tests expect.
for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
    os.environ.pop(name, None)
for name in (*ENV_NAMES, *MONITOR_ENV_NAMES):
    os.environ.pop(name, None)


@pytest.fixture(scope="session")
def models() -> DemoModels:
    """Small LightGBM models trained on generated data, once per session (about a second)."""
    return train_demo_models()


@pytest.fixture
def s3_store() -> Iterator[S3Store]:
    """An empty bucket in moto's in-process mock."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="tickerserve-models")
        yield S3Store("tickerserve-models", client=client)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server process on 127.0.0.1 shared by the end-to-end tests."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def server_bucket(moto_endpoint: str) -> S3Store:
    """A fresh bucket on the moto server, with a client pointed at it."""
    client = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)
    name = f"ts-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return S3Store(name, client=client)
