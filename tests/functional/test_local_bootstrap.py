"""The local stack's bootstrap (`make run`): every example tenant gets a support key too, once, and it is printed."""

from __future__ import annotations

import json
from pathlib import Path

from chalicelib.services.tenancy.keys import authenticate
from infra.local import run

EXAMPLE_TENANTS = {"coffee-chain", "fuel-network", "city-coalition"}


def test_each_example_tenant_gets_one_working_support_key_that_the_banner_shows(aws_stack: None,
                                                                               tmp_path: Path) -> None:
    keys_path = tmp_path / "keys.json"
    keys = run.bootstrap(keys_path)
    support = {k["tenant_id"]: k for k in keys if k["role"] == "support"}
    assert set(support) == EXAMPLE_TENANTS
    for tenant_id, key in support.items():
        principal = authenticate(key["secret"])
        assert (principal.role.value, principal.owner) == ("support", tenant_id)
        assert key["secret"].startswith(f"lp_sup_{tenant_id}.")
    assert json.loads(keys_path.read_text())["keys"] == keys, "saved for the next start"

    again = run.bootstrap(keys_path)
    assert again == keys, "a restart mints no second support key"

    banner = run.banner("http://127.0.0.1:8000", "http://127.0.0.1:5000", keys, keys_path, tmp_path / "rec.log")
    for tenant_id, key in support.items():
        assert f"  {'support':<13} {key['owner']:<24} {tenant_id:<16} {key['secret']}" in banner.splitlines()
