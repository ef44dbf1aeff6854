"""An answer that asks for a retry is never kept under its Idempotency-Key (found by the load test).

A till told `409 card_busy` + `Retry-After` re-sends the same request with the
same key, as the docs say; replaying the kept 409 forever would make that
purchase impossible to complete with its key.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.services.pos import purchases
from tests.functional.conftest import Api, TenantKeys


def test_card_busy_is_not_kept_and_the_retry_with_the_same_key_runs(
    api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main"}).data["number"]
    body: dict[str, Any] = {"receipt_id": "r-1", "card_number": card, "store_id": "msk-01", "total": 10_000,
                            "items": [{"sku": "x", "quantity": 1, "amount": 10_000}]}
    headers = {"Idempotency-Key": "k-1"}
    with monkeypatch.context() as m:
        m.setattr(purchases, "write_once", lambda *a, **k: None)  # every write loses the version race
        m.setattr(purchases, "RETRY_SECONDS", 0.0)
        first = api.post("/v1/purchases", tenant.pos, body, headers=headers)
    assert first.status_code == 409 and first.data["error"]["code"] == "card_busy"
    assert first.headers["Retry-After"] == "1"
    again = api.post("/v1/purchases", tenant.pos, body, headers=headers)
    assert again.status_code == 200 and again.data["points_earned"] == 5
    assert "Idempotent-Replayed" not in again.headers
    replay = api.post("/v1/purchases", tenant.pos, body, headers=headers)
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert replay.data == again.data
