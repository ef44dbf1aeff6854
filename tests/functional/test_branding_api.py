"""`GET/PUT /v1/branding`: the member site's branding through the API (the console page's service and model)."""

from __future__ import annotations

import re
from typing import Any

from tests.functional.conftest import Api, TenantKeys
from tests.functional.member_helpers import member_signed_up
from tests.functional.test_console_branding import upload
from tests.functional.test_console_programs import person
from tests.functional.test_console_sign_in import hidden

DEFAULTS = {"primary_colour": "#1f5f8b", "accent_colour": "#b3541e", "logo_asset_id": None,
            "sign_up_program_id": None}


def test_the_admin_reads_and_replaces_the_branding_and_the_site_wears_it(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    first = api.get("/v1/branding", tenant.admin)
    assert first.status_code == 200 and first.data == DEFAULTS
    logo = upload(api, tenant.admin)
    program = api.post("/v1/programs", tenant.admin, {"id": "club", "name": "Club", "earning": {"rate_bps": 300},
                                                      "redemption": {"point_value": 100, "max_share_bps": 3000}})
    assert program.status_code == 201, program.data
    body = {"primary_colour": "#FFD700", "accent_colour": "#003366", "logo_asset_id": logo,
            "sign_up_program_id": "club"}
    saved = api.put("/v1/branding", tenant.admin, body)
    assert saved.status_code == 200, saved.data
    assert saved.data == body
    assert api.get("/v1/branding", tenant.admin).data == body
    assert api.get("/v1/tenant", tenant.admin).data["branding"] == body  # the same record the console page edits
    # Audited like the console page: the action, the key that did it, the values.
    audit = api.get("/v1/audit?action=tenant.branding_updated", tenant.admin).data["items"]
    assert len(audit) == 1
    assert audit[0]["actor"].startswith("tenant_admin:") and audit[0]["target"] == f"tenant:{tenant.tenant_id}"
    assert audit[0]["detail"]["primary_colour"] == "#FFD700" and audit[0]["detail"]["logo_asset_id"] == logo
    # The member site shows it: the logo in the header, the colour in brand.css, the chosen program's card.
    from chalicelib.services.program import catalog

    catalog.clear()
    member = member_signed_up(api, tenant.tenant_id, "+79161234567")
    home = member.get(f"/m/{tenant.tenant_id}/")
    assert f'src="/v1/public/assets/{tenant.tenant_id}/{logo}"' in home.text
    link = re.search(r'href="(/m/[^"]+/brand\.css\?v=\w+)"', home.text)
    assert link is not None
    css = member.get(link.group(1)).text
    assert "--brand:#ffd700;" in css and "--brand-accent:#003366;" in css
    number = api.get("/v1/customers?phone=%2B79161234567", tenant.admin).data["cards"][0]
    assert api.get(f"/v1/cards/{number}", tenant.admin).data["program_id"] == "club"
    # A PUT replaces: absent fields take their defaults (the logo and program are dropped).
    reset = api.put("/v1/branding", tenant.admin, {"primary_colour": "#000000"})
    assert reset.status_code == 200 and reset.data == {**DEFAULTS, "primary_colour": "#000000"}
    # The other tenant's branding did not move.
    assert api.get("/v1/branding", other_tenant.admin).data == DEFAULTS


def test_refusals_name_the_field_and_change_nothing(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    logo = upload(api, tenant.admin)
    ok = {"primary_colour": "#FFD700", "accent_colour": "#003366", "logo_asset_id": logo}
    assert api.put("/v1/branding", tenant.admin, ok).status_code == 200
    foreign_logo = upload(api, other_tenant.admin)
    cases = [
        ({"primary_colour": "red;}body{display:none"}, 400, "validation_error", "primary_colour"),
        ({"accent_colour": "#12345"}, 400, "validation_error", "accent_colour"),
        ({"logo_asset_id": "../../etc/passwd"}, 400, "validation_error", "logo_asset_id"),
        ({"font": "Comic Sans"}, 400, "validation_error", "font"),
        ({"logo_asset_id": foreign_logo}, 422, "unknown_asset", "logo_asset_id"),
        ({"sign_up_program_id": "no-such-program"}, 422, "unknown_program", "sign_up_program_id"),
        ({"sign_up_program_id": "fuel-club"}, 422, "unknown_program", "sign_up_program_id"),  # the other tenant's
    ]
    other_program = api.post("/v1/programs", other_tenant.admin, {
        "id": "fuel-club", "name": "Fuel", "earning": {"rate_bps": 300},
        "redemption": {"point_value": 100, "max_share_bps": 3000}})
    assert other_program.status_code == 201, other_program.data
    for body, status, code, field in cases:
        r = api.put("/v1/branding", tenant.admin, body)
        assert r.status_code == status, (body, r.data)
        assert r.data["error"]["code"] == code, (body, r.data)
        assert [d["field"] for d in r.data["error"]["details"]] == [field], (body, r.data)
    assert api.get("/v1/branding", tenant.admin).data == {**ok, "sign_up_program_id": None}
    audit = api.get("/v1/audit?action=tenant.branding_updated", tenant.admin).data["items"]
    assert len(audit) == 1  # only the accepted change


def test_only_the_tenant_admin_reads_or_changes_it(api: Api, tenant: TenantKeys) -> None:
    for key in (tenant.pos, tenant.support, tenant.agency):
        assert api.get("/v1/branding", key).status_code == 403
        r = api.put("/v1/branding", key, {"primary_colour": "#000000"})
        assert r.status_code == 403 and r.data["error"]["code"] == "forbidden"
    assert api.get("/v1/branding").status_code == 401
    assert api.put("/v1/branding", None, {"primary_colour": "#000000"}).status_code == 401
    assert api.get("/v1/branding", tenant.admin).data == DEFAULTS  # nothing of the refused calls stuck


def test_a_change_that_raced_another_is_a_clear_409_and_nothing_is_merged(
        api: Api, tenant: TenantKeys, monkeypatch: Any) -> None:
    """The tenant record is written only if unchanged since read (its version): the loser of a race is told."""
    from chalicelib.storage import directory
    from chalicelib.storage.tables import DirectoryRecord, get_item, tenant_partition

    stale = get_item(DirectoryRecord, tenant_partition(tenant.tenant_id), directory.TENANT_SK)
    assert stale is not None
    first = api.put("/v1/branding", tenant.admin, {"primary_colour": "#111111"})
    assert first.status_code == 200, first.data
    real = directory.get_item

    def read_before_the_other_write(model: Any, pk: str, sk: str, *args: Any, **kwargs: Any) -> Any:
        return stale if (model, pk, sk) == (DirectoryRecord, stale.pk, stale.sk) else real(model, pk, sk, *args,
                                                                                              **kwargs)

    monkeypatch.setattr(directory, "get_item", read_before_the_other_write)
    second = api.put("/v1/branding", tenant.admin, {"primary_colour": "#222222"})
    assert second.status_code == 409 and second.data["error"]["code"] == "concurrent_change"
    monkeypatch.undo()
    assert api.get("/v1/branding", tenant.admin).data["primary_colour"] == "#111111"
    audit = api.get("/v1/audit?action=tenant.branding_updated", tenant.admin).data["items"]
    assert [a["detail"]["primary_colour"] for a in audit] == ["#111111"]


def test_the_console_page_says_so_when_its_save_raced_another(
        api: Api, tenant: TenantKeys, monkeypatch: Any) -> None:
    from chalicelib.errors import conflict
    from chalicelib.services.tenancy import branding

    anna = person(api, tenant, "anna@coffee.example")
    page = anna.get("/console/branding")

    def raced(*args: Any, **kwargs: Any) -> Any:
        raise conflict("concurrent_change", "Changed concurrently by another request; retry.")

    monkeypatch.setattr(branding.directory, "update_tenant", raced)
    r = anna.post("/console/branding", {"csrf": hidden(page.text, "csrf"), "primary_colour": "#333333",
                                        "accent_colour": "#444444"})
    assert r.status_code == 409
    assert ('<div class="alert" role="alert"><p>The member site was changed elsewhere at the same time. What you '
            'typed is kept: save it again.</p></div>') in r.text
    assert 'value="#333333"' in r.text and 'value="#444444"' in r.text
