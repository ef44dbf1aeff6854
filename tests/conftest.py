"""Shared fixtures. Environment first: settings and PynamoDB table names are read at import."""

from __future__ import annotations

import os

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "STAGE": "test",
        "POWERTOOLS_METRICS_NAMESPACE": "Loyalty",
        "POWERTOOLS_SERVICE_NAME": "loyalty",
        "MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP": "true",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)

from collections.abc import Iterator
from typing import Any

import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from chalicelib.services.integrations import webhooks
from chalicelib.services.program import catalog
from chalicelib.services.tenancy import keys as key_service
from chalicelib.services.wallet import cards as wallet_cards
from chalicelib.storage import aws, queues, staff_pool, transactions
from chalicelib.storage.tables import TABLES

_LOADERS: dict[Any, botocore.loaders.Loader] = {}


def _shared_loader(search_path_string: Any = None) -> botocore.loaders.Loader:
    """One botocore data loader per process: every test makes new sessions (fresh clients for a fresh moto, new
    PynamoDB connections), and each new session's own loader parsed the services' JSON models again, about
    0.4 s of every functional test's setup. The loader only reads files and caches what it read."""
    if search_path_string not in _LOADERS:
        _LOADERS[search_path_string] = botocore.loaders.create_loader(search_path_string)
    return _LOADERS[search_path_string]


botocore.session.create_loader = _shared_loader  # type: ignore[assignment]


def _reset_caches() -> None:
    aws.reset_clients()
    queues.queue_url.cache_clear()
    key_service._tenant_status_cache.clear()
    catalog.clear()
    webhooks.clear_cache()
    wallet_cards.forget()
    staff_pool.forget_ids()
    transactions.reset_connection()
    for model in TABLES:
        model._connection = None


@pytest.fixture
def aws_stack() -> Iterator[None]:
    """A fresh in-process moto AWS with every table, queue and bucket created."""
    from infra.local.resources import create_resources

    with mock_aws():
        _reset_caches()
        create_resources(stage="test")
        yield
    _reset_caches()


@pytest.fixture
def clock() -> Iterator[object]:
    """The rules' clock, frozen at 2026-11-02 10:00 UTC; `clock.advance(days=31)` moves it. Unfrozen after."""
    from datetime import UTC, datetime

    from chalicelib import clock as rules_clock

    rules_clock.freeze(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
    yield rules_clock
    rules_clock.unfreeze()
