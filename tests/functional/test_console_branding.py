"""The tenant admin's member-site branding page (`/console/branding`): colours, logo, sign-up program."""

from __future__ import annotations

import base64
import re

from tests.functional.conftest import Api, TenantKeys
from tests.functional.member_helpers import member_signed_up
from tests.functional.test_console_programs import person
from tests.functional.test_console_sign_in import field_error, hidden
from tests.functional.test_console_templates import png


def upload(api: Api, key: str) -> str:
    r = api.post("/v1/assets", key, {"filename": "logo.png", "data_base64": base64.b64encode(png(4, 4)).decode()})
    assert r.status_code == 201, r.data
    return str(r.data["id"])


def test_the_admin_brands_the_member_site_and_the_errors_stay_at_their_fields(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    logo, foreign_logo = upload(api, tenant.admin), upload(api, other_tenant.admin)
    program = api.post("/v1/programs", tenant.admin, {"id": "club", "name": "Club <b>card</b>",
                                                      "earning": {"rate_bps": 300},
                                                      "redemption": {"point_value": 100, "max_share_bps": 3000}})
    assert program.status_code == 201, program.data
    anna = person(api, tenant, "anna@coffee.example")
    page = anna.get("/console/branding")
    assert page.status_code == 200 and 'href="/console/branding"' in page.text
    assert 'value="#1f5f8b"' in page.text and "Club &lt;b&gt;card&lt;/b&gt;" in page.text
    csrf = hidden(page.text, "csrf")
    bad = anna.post("/console/branding", {"csrf": csrf, "primary_colour": "red;}body{x:y", "accent_colour": "#003366",
                                          "logo_asset_id": logo, "sign_up_program_id": "club"})
    assert bad.status_code == 400
    assert field_error(bad.text, "primary_colour").startswith("Enter a colour as #")
    assert 'value="red;}body{x:y"' in bad.text and 'value="#003366"' in bad.text
    theirs = anna.post("/console/branding", {"csrf": csrf, "primary_colour": "#FFD700", "logo_asset_id": foreign_logo})
    assert theirs.status_code == 422 and field_error(theirs.text, "logo_asset_id") == "Choose an image of your library."
    saved = anna.post("/console/branding", {"csrf": csrf, "primary_colour": "#FFD700", "accent_colour": "#003366",
                                            "logo_asset_id": logo, "sign_up_program_id": "club"})
    assert saved.status_code == 303 and saved.headers["Location"] == "/console/branding?saved=1"
    tenant_now = api.get("/v1/tenant", tenant.admin).data["branding"]
    assert tenant_now == {"primary_colour": "#FFD700", "accent_colour": "#003366", "logo_asset_id": logo,
                          "sign_up_program_id": "club"}
    from chalicelib.services.program import catalog

    catalog.clear()
    member = member_signed_up(api, tenant.tenant_id, "+79161234567")
    home = member.get(f"/m/{tenant.tenant_id}/")
    assert f'src="/v1/public/assets/{tenant.tenant_id}/{logo}"' in home.text
    css = member.get(re.search(r'href="(/m/[^"]+/brand\.css\?v=\w+)"', home.text).group(1))  # type: ignore[union-attr]
    assert "--brand:#ffd700;" in css.text and "--brand-ink:#000000;" in css.text
    number = api.get("/v1/customers?phone=%2B79161234567", tenant.admin).data["cards"][0]
    assert api.get(f"/v1/cards/{number}", tenant.admin).data["program_id"] == "club"
    # Support staff and another tenant's admin neither see nor change it.
    olga = person(api, tenant, "olga@coffee.example", "support")
    assert olga.get("/console/branding").status_code == 403
    ivan = person(api, other_tenant, "ivan@fuel.example")
    page = ivan.get("/console/branding")
    assert logo not in page.text and "#FFD700" not in page.text
    assert api.get("/v1/tenant", tenant.admin).data["branding"]["primary_colour"] == "#FFD700"
