"""Applying tenant files against moto: creates, then converges; never duplicates, deletes or takes over."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib import cli
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError
from chalicelib.schemas.tenancy import ProgramKind, ProgramStatus, Rounding
from chalicelib.services.tenancy import keys as api_keys
from chalicelib.services.tenancy.platform import ensure_platform_key
from chalicelib.services.tenancy.scopes import Scope
from chalicelib.services.tenancy.tenant_files import (
    ApplyReport,
    TenantApplyInterrupted,
    TenantFileError,
    apply_tenant_file,
)
from chalicelib.storage import directory
from chalicelib.storage.tables import ApiKeyRecord, AuditRecord, DirectoryRecord

TENANTS = Path(__file__).resolve().parents[2] / "tenants"
COFFEE = TENANTS / "coffee-chain.yaml"
FUEL = TENANTS / "fuel-network.yaml"
COALITION = TENANTS / "city-coalition.yaml"


def snapshot() -> tuple[dict[tuple[str, str], Any], list[tuple[str, str, str]], list[tuple[str, str]]]:
    """Every directory row with its version and timestamps, every key and every audit entry."""
    rows = {(r.pk, r.sk): (r.version, r.updated_at, r.doc.as_dict()) for r in DirectoryRecord.scan()}
    keys = sorted((r.pk, r.sk, r.status) for r in ApiKeyRecord.scan())
    audit = sorted((r.pk, r.sk) for r in AuditRecord.scan())
    return rows, keys, audit


def copy_with(tmp_path: Path, source: Path, change: Any, name: str | None = None) -> Path:
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / (name or source.name)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def roles_and_owners(report: ApplyReport) -> list[tuple[Role, str]]:
    return sorted((k.role, k.owner) for k in report.created_keys)


def all_programs(tenant_id: str) -> dict[str, Any]:
    return {p.id: p for p in directory.list_programs(tenant_id, 200, None)[0]}


def all_stores(tenant_id: str) -> dict[str, Any]:
    return {s.id: s for s in directory.list_stores(tenant_id, 200, None)[0]}


def test_apply_examples_create_everything(aws_stack: None) -> None:
    coffee = apply_tenant_file(COFFEE)
    assert coffee.lines == [
        "agency demo-agency: created",
        "tenant coffee-chain: created",
        "program coffee-chain/zerno-points: created",
        "store coffee-chain/msk-tverskaya: created",
        "store coffee-chain/msk-arbat: created",
        "store coffee-chain/spb-nevsky: created",
        "store coffee-chain/spb-petrogradka: created",
    ]
    assert (coffee.created, coffee.updated, coffee.unchanged, coffee.not_in_file) == (7, 0, 0, 0)
    assert roles_and_owners(coffee) == [
        (Role.AGENCY, "demo-agency"), (Role.POS, "coffee-chain"), (Role.TENANT_ADMIN, "coffee-chain")]
    for key in coffee.created_keys:  # the keys work
        principal = api_keys.authenticate(key.secret)
        assert (principal.role, principal.owner, principal.agency_id) == (key.role, key.owner, "demo-agency")

    agency = directory.get_agency("demo-agency")
    assert agency is not None and agency.name == "Demo Loyalty Center"
    tenant = directory.get_tenant("coffee-chain")
    assert tenant is not None
    assert (tenant.agency_id, tenant.name, tenant.plan.value, tenant.currency, tenant.timezone, tenant.status.value) == (
        "demo-agency", "Zerno Coffee", "standard", "RUB", "Europe/Moscow", "active")
    program = directory.get_program("coffee-chain", "zerno-points")
    assert program is not None
    assert (program.kind, program.earning.rate_bps, program.earning.rounding, program.earning.min_receipt) == (
        ProgramKind.POINTS, 500, Rounding.DOWN, 10000)
    assert (program.redemption.point_value, program.redemption.max_share_bps) == (100, 3000)
    assert (program.pending_days, program.expiry_days, program.version) == (14, 365, 1)
    stores = all_stores("coffee-chain")
    assert sorted(stores) == ["msk-arbat", "msk-tverskaya", "spb-nevsky", "spb-petrogradka"]
    assert stores["spb-nevsky"].region == "Saint Petersburg"
    assert stores["spb-nevsky"].address == "Saint Petersburg, Nevsky pr. 88"

    fuel = apply_tenant_file(FUEL)
    assert fuel.lines[:3] == ["agency demo-agency: unchanged", "tenant fuel-network: created",
                              "program fuel-network/fuel-points: created"]
    assert "program fuel-network/fleet-discount: created" in fuel.lines
    assert (fuel.created, fuel.unchanged) == (1 + 2 + 5, 1)
    assert roles_and_owners(fuel) == [(Role.POS, "fuel-network"), (Role.TENANT_ADMIN, "fuel-network")]
    programs = all_programs("fuel-network")
    assert programs["fuel-points"].earning.excluded_categories == ["tobacco", "alcohol", "lottery", "gift-cards"]
    assert programs["fleet-discount"].kind is ProgramKind.DISCOUNT
    assert programs["fleet-discount"].discount.percent_bps == 250
    assert programs["fleet-discount"].store_ids == ["m10-tver-160km", "m10-novgorod-505km", "m8-yaroslavl-250km"]
    assert len(all_stores("fuel-network")) == 5
    fuel_tenant = directory.get_tenant("fuel-network")
    assert fuel_tenant is not None and fuel_tenant.plan.value == "premium"

    coalition = apply_tenant_file(COALITION)
    assert len(coalition.created_keys) == 2
    tenant = directory.get_tenant("city-coalition")
    assert tenant is not None
    assert [(p.id, p.name) for p in tenant.partners] == [
        ("bukva-books", "Bukva Bookshops"), ("kino-ural", "Kino Ural Cinemas")]
    assert tenant.timezone == "Asia/Yekaterinburg"
    assert {s.id: s.partner_id for s in all_stores("city-coalition").values()} == {
        "bukva-lenina": "bukva-books", "bukva-greenwich": "bukva-books", "kino-passage": "kino-ural"}

    listed, _ = directory.list_tenants_of_agency("demo-agency", 50, None)
    assert sorted(t.tenant_id for t in listed) == ["city-coalition", "coffee-chain", "fuel-network"]


def test_second_apply_writes_nothing(aws_stack: None) -> None:
    for path in (COFFEE, FUEL, COALITION):
        apply_tenant_file(path)
    before = snapshot()

    for path in (COFFEE, FUEL, COALITION):
        report = apply_tenant_file(path)
        assert report.lines, path
        assert all(line.endswith(": unchanged") for line in report.lines), report.lines
        assert (report.created, report.updated, report.not_in_file, report.writes) == (0, 0, 0, 0)
        assert report.created_keys == []
    assert snapshot() == before  # no versions bumped, no keys, audit log not grown


def test_changed_program_is_exactly_the_one_updated(aws_stack: None, tmp_path: Path) -> None:
    apply_tenant_file(FUEL)
    fuel_points_before = directory.get_program("fuel-network", "fuel-points")
    audit_before = len(list(AuditRecord.query("fuel-network")))

    def change(data: dict[str, Any]) -> None:
        data["programs"][1]["discount"]["percent_bps"] = 300

    report = apply_tenant_file(copy_with(tmp_path, FUEL, change))
    changed = [line for line in report.lines if not line.endswith(": unchanged")]
    assert changed == ["program fuel-network/fleet-discount: updated (version 2)"]
    assert (report.updated, report.created, report.unchanged) == (1, 0, 1 + 1 + 1 + 5)
    assert report.created_keys == []

    fleet = directory.get_program("fuel-network", "fleet-discount")
    assert fleet is not None and (fleet.discount.percent_bps, fleet.version) == (300, 2)
    assert directory.get_program("fuel-network", "fuel-points") == fuel_points_before
    actions = [r.action for r in AuditRecord.query("fuel-network")]
    assert len(actions) == audit_before + 1 and "program.updated" in actions
    updated = [r for r in AuditRecord.query("fuel-network") if r.action == "program.updated"]
    assert updated[0].target == "program:fleet-discount" and updated[0].actor == "cli"


def test_tenant_settings_and_store_changes(aws_stack: None, tmp_path: Path) -> None:
    apply_tenant_file(COALITION)

    def change(data: dict[str, Any]) -> None:
        data["tenant"]["plan"] = "premium"
        data["tenant"]["partners"].append({"id": "ural-coffee", "name": "Ural Coffee"})
        data["stores"][0]["active"] = False
        data["stores"].append({"id": "ural-coffee-1", "name": "Ural Coffee Plotinka", "partner_id": "ural-coffee"})
        del data["stores"][1]  # bukva-greenwich: removed from the file, kept in storage

    report = apply_tenant_file(copy_with(tmp_path, COALITION, change), actor="ops@demo-agency")
    assert report.lines == [
        "agency demo-agency: unchanged",
        "tenant city-coalition: updated (partners, plan)",
        "store city-coalition/bukva-lenina: updated",
        "store city-coalition/kino-passage: unchanged",
        "store city-coalition/ural-coffee-1: created",
        "program city-coalition/city-points: unchanged",
        "store city-coalition/bukva-greenwich: not in file (left unchanged)",
    ]
    assert (report.created, report.updated, report.unchanged, report.not_in_file) == (1, 2, 3, 1)
    tenant = directory.get_tenant("city-coalition")
    assert tenant is not None and tenant.plan.value == "premium"
    assert [p.id for p in tenant.partners] == ["bukva-books", "kino-ural", "ural-coffee"]
    stores = all_stores("city-coalition")
    assert stores["bukva-lenina"].active is False
    assert stores["ural-coffee-1"].partner_id == "ural-coffee"
    assert stores["bukva-greenwich"].partner_id == "bukva-books"  # never deleted
    assert {r.actor for r in AuditRecord.query("city-coalition") if r.action != "tenant.provisioned"} == {
        "ops@demo-agency"}


def test_tenant_of_another_agency_is_refused_and_nothing_written(aws_stack: None, tmp_path: Path) -> None:
    apply_tenant_file(COFFEE)
    before = snapshot()

    def other_agency(data: dict[str, Any]) -> None:
        data["agency"] = {"id": "rival-agency", "name": "Rival Loyalty"}
        data["tenant"]["name"] = "Taken Over Coffee"
        data["programs"][0]["earning"]["rate_bps"] = 9000

    path = copy_with(tmp_path, COFFEE, other_agency)
    with pytest.raises(TenantFileError) as caught:
        apply_tenant_file(path)
    assert str(caught.value) == (
        f"{path}: tenant.id: tenant 'coffee-chain' belongs to agency 'demo-agency', not 'rival-agency'; "
        "a tenant file never takes over another agency's tenant")
    assert directory.get_agency("rival-agency") is None
    assert snapshot() == before

    # The command line refuses it before applying any file, even the valid ones listed first.
    assert cli.main(["apply", str(FUEL), str(path)], target=cli.Target.as_configured()) == 1
    assert directory.get_tenant("fuel-network") is None
    assert snapshot() == before


def test_currency_cannot_change(aws_stack: None, tmp_path: Path) -> None:
    apply_tenant_file(COFFEE)
    path = copy_with(tmp_path, COFFEE, lambda d: d["tenant"].update(currency="EUR"))
    with pytest.raises(TenantFileError, match=r"tenant\.currency: the tenant's balances are in RUB"):
        apply_tenant_file(path)


def test_more_stores_than_one_transaction(aws_stack: None, tmp_path: Path) -> None:
    """95 stores: 90 go with the tenant, the rest right after; a program naming all 95 is never live too early."""
    stores = [{"id": f"shop-{i:03d}", "name": f"Shop {i}", "region": "Kazan"} for i in range(95)]

    def many(data: dict[str, Any]) -> None:
        data["tenant"]["id"] = "big-chain"
        data["stores"] = stores
        data["programs"][0]["store_ids"] = [s["id"] for s in stores]

    report = apply_tenant_file(copy_with(tmp_path, COFFEE, many, "big.yaml"))
    assert report.lines[:2] == ["agency demo-agency: created", "tenant big-chain: created"]
    assert report.lines[-1] == "program big-chain/zerno-points: created (version 2)"
    assert sum(line.startswith("store big-chain/") and line.endswith(": created") for line in report.lines) == 95
    assert (report.created, report.updated, len(report.created_keys)) == (1 + 1 + 95 + 1, 0, 3)
    program = directory.get_program("big-chain", "zerno-points")
    assert program is not None
    assert (program.status, len(program.store_ids), program.earning.rate_bps) == (ProgramStatus.ACTIVE, 95, 500)
    assert len(directory.all_store_ids("big-chain")) == 95

    def many_and_everywhere(data: dict[str, Any]) -> None:
        many(data)
        data["programs"].append({"id": "everywhere", "name": "Everywhere", "earning": {"rate_bps": 100}})

    again = apply_tenant_file(copy_with(tmp_path, COFFEE, many_and_everywhere, "big.yaml"))
    assert [line for line in again.lines if not line.endswith(": unchanged")] == [
        "program big-chain/everywhere: created"]
    assert len(again.lines) == 1 + 1 + 95 + 2


def test_first_program_that_fits_is_provisioned(aws_stack: None, tmp_path: Path) -> None:
    """When the first program names more than 90 stores, a later one that fits goes with the tenant."""
    stores = [{"id": f"shop-{i:03d}", "name": f"Shop {i}"} for i in range(92)]

    def change(data: dict[str, Any]) -> None:
        data["tenant"]["id"] = "wide-chain"
        data["stores"] = stores
        data["programs"][0]["store_ids"] = [s["id"] for s in stores]
        data["programs"].append({"id": "pilot", "name": "Pilot", "earning": {"rate_bps": 100},
                                 "store_ids": ["shop-091"]})

    report = apply_tenant_file(copy_with(tmp_path, COFFEE, change, "wide.yaml"))
    assert report.lines[:4] == ["agency demo-agency: created", "tenant wide-chain: created",
                                "program wide-chain/pilot: created", "store wide-chain/shop-091: created"]
    assert report.lines[-1] == "program wide-chain/zerno-points: created"
    assert report.created == 1 + 1 + 2 + 92
    pilot = directory.get_program("wide-chain", "pilot")
    assert pilot is not None and pilot.store_ids == ["shop-091"]


def test_keys_minted_before_a_failure_are_not_lost(aws_stack: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.services.tenancy import tenancy

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ApiError(503, "unavailable", "storage is down")

    monkeypatch.setattr(tenancy, "create_program", broken)
    with pytest.raises(TenantApplyInterrupted) as caught:
        apply_tenant_file(FUEL)
    report = caught.value.report
    assert roles_and_owners(report) == [
        (Role.AGENCY, "demo-agency"), (Role.POS, "fuel-network"), (Role.TENANT_ADMIN, "fuel-network")]
    assert "storage is down" in str(caught.value)
    monkeypatch.undo()
    resumed = apply_tenant_file(FUEL)  # re-running completes the job
    assert resumed.lines[-1] == "program fuel-network/fleet-discount: created"
    assert resumed.created == 1 and resumed.created_keys == []


def test_cli_apply_keys_out(aws_stack: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys_out = tmp_path / "keys.json"
    assert cli.main(["apply", str(COFFEE), str(FUEL), "--keys-out", str(keys_out)],
                    target=cli.Target.as_configured()) == 0
    out = capsys.readouterr().out
    assert "  tenant coffee-chain: created" in out and "  program fuel-network/fleet-discount: created" in out
    assert "5 new key(s) appended" in out
    saved = json.loads(keys_out.read_text())
    assert sorted((k["role"], k["owner"]) for k in saved) == [
        ("agency", "demo-agency"), ("pos", "coffee-chain"), ("pos", "fuel-network"),
        ("tenant_admin", "coffee-chain"), ("tenant_admin", "fuel-network")]
    assert all(k["secret"] not in out for k in saved)  # written to the file, not printed
    assert stat.S_IMODE(keys_out.stat().st_mode) == 0o600
    assert api_keys.authenticate(saved[0]["secret"]).owner == saved[0]["owner"]

    assert cli.main(["apply", str(TENANTS), "--keys-out", str(keys_out)], target=cli.Target.as_configured()) == 0
    out = capsys.readouterr().out
    assert "tenant city-coalition: created" in out and "tenant coffee-chain: unchanged" in out
    assert len(json.loads(keys_out.read_text())) == 5 + 2  # appended, earlier keys kept

    assert cli.main(["apply", str(TENANTS)], target=cli.Target.as_configured()) == 0
    out = capsys.readouterr().out
    assert "New keys" not in out and ": created" not in out


def test_cli_apply_prints_keys_once(aws_stack: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["apply", str(COALITION)], target=cli.Target.as_configured()) == 0
    out = capsys.readouterr().out
    assert out.count("lp_agy_demo-agency.") == 1
    assert out.count("lp_adm_city-coalition.") == 1 and out.count("lp_pos_city-coalition.") == 1


def test_ensure_platform_key(aws_stack: None, capsys: pytest.CaptureFixture[str]) -> None:
    key = ensure_platform_key("bootstrap")
    assert key is not None
    assert (key.role, key.owner, key.name, key.status) == (Role.PLATFORM, "platform", "bootstrap", "active")
    assert api_keys.authenticate(key.secret).role is Role.PLATFORM
    assert ensure_platform_key() is None
    assert cli.main(["platform-key"], target=cli.Target.as_configured()) == 0
    assert "already exists; nothing created" in capsys.readouterr().out
    assert len(list(ApiKeyRecord.query("platform"))) == 1

    api_keys.revoke(Scope.platform(), key.key_id, "test")
    assert cli.main(["platform-key", "--name", "second"], target=cli.Target.as_configured()) == 0
    out = capsys.readouterr().out
    assert "platform key " in out and out.count("lp_plt_platform.") == 1
    assert ensure_platform_key() is None
    assert len(list(ApiKeyRecord.query("platform"))) == 2
