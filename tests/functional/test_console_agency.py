"""The agency's console pages: its tenants (provision, edit, suspend, reactivate, delete, their people) and its staff.

Through the Chalice test client as a browser sees them (tests/functional/test_console_sign_in.py's Browser),
checked against the API's own answers: what a page did is what `/v1/agency/*` and the keys then show.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.people import PASSWORD, invite_and_join, last_mail, token_from, verify_sender
from tests.functional.test_console_sign_in import Browser, field_error, hidden, signed_in

PROVISION = "/console/agency/provision"
TENANTS = "/console/agency/tenants"
MEMBERS = "/console/agency/members"


def agency_person(api: Api, agency_key: str, email: str) -> Browser:
    """A person of the agency whose key this is: invited with the key, joined, signed in (MFA enrolled)."""
    verify_sender()
    invite_and_join(api, None, email, "agency", key=agency_key)
    return signed_in(api, email, None)


def provision_fields(tenant_id: str = "tea-house", **overrides: str) -> dict[str, str]:
    fields = {"tenant_id": tenant_id, "name": "Tea House", "plan": "premium", "currency": "RUB",
              "timezone": "Asia/Yekaterinburg", "program_id": "tea", "program_name": "Tea points",
              "program_rate_bps": "700", "store_rows": "3",
              "store_id_0": "ekb-01", "store_name_0": "Lenina 5", "store_region_0": "ural",
              "store_id_1": "", "store_name_1": "", "store_region_1": "",
              "store_id_2": "ekb-02", "store_name_2": "Malysheva 12", "store_region_2": "ural",
              "admin_email": "olga@tea.example", "action": "provision"}
    fields.update(overrides)
    return fields


def secret_of(page: str, role: str) -> str:
    found = re.search(rf'data-key-role="{role}">([^<]+)</code>', page)
    assert found, f"no {role} key on the page"
    return unescape(found.group(1))


def value_of(page: str, name: str) -> str:
    found = re.search(rf'<input id="f-{name}" name="{name}" type="[a-z]+" value="([^"]*)"', page)
    assert found, f"no input {name}"
    return unescape(found.group(1))


def test_an_agency_provisions_a_tenant_sees_its_keys_once_and_invites_its_first_admin(
        api: Api, agency_key: str) -> None:
    anna = agency_person(api, agency_key, "anna@acme.example")
    page = anna.get(PROVISION)
    assert page.status_code == 200 and "<h1>Provision a tenant</h1>" in page.text
    assert value_of(page.text, "currency") == "RUB" and value_of(page.text, "timezone") == "Europe/Moscow"

    r = anna.post(PROVISION, {"csrf": hidden(page.text, "csrf"), **provision_fields()})
    assert r.status_code == 201, r.text[-800:]
    assert "Shown once." in r.text and "can never be shown again" in r.text
    admin_key, pos_key = secret_of(r.text, "tenant_admin"), secret_of(r.text, "pos")
    assert r.headers["Cache-Control"] == "no-store"
    assert "An invitation went to olga@tea.example" in r.text

    who = api.get("/v1/whoami", admin_key)
    assert who.status_code == 200 and (who.data["role"], who.data["owner"]) == ("tenant_admin", "tea-house")
    assert api.get("/v1/whoami", pos_key).data["role"] == "pos"
    tenant = api.get("/v1/agency/tenants/tea-house", agency_key).data
    assert (tenant["name"], tenant["plan"], tenant["currency"], tenant["timezone"], tenant["status"]) == \
        ("Tea House", "premium", "RUB", "Asia/Yekaterinburg", "active")
    stores = api.get("/v1/stores", admin_key).data["items"]
    assert sorted((s["id"], s["name"], s["region"]) for s in stores) == [("ekb-01", "Lenina 5", "ural"),
                                                                          ("ekb-02", "Malysheva 12", "ural")]
    program = api.get("/v1/programs/tea", admin_key).data
    assert (program["name"], program["earning"]["rate_bps"]) == ("Tea points", 700)

    drain()
    mail = last_mail("olga@tea.example")
    assert "Tea House" in mail and "?token=" in mail
    accepted = api.post("/v1/auth/invitations/accept", body={"token": token_from(mail), "password": PASSWORD})
    assert accepted.status_code == 201 and accepted.data["role"] == "tenant_admin"
    assert accepted.data["scope"] == "tenant:tea-house"

    listing = anna.get(TENANTS)
    assert listing.status_code == 200 and "Tea House" in listing.text and "tea-house" in listing.text
    assert "Premium" in listing.text and "200 requests/s, 10,000,000 a day" in listing.text
    detail = anna.get(f"{TENANTS}/tea-house")
    assert detail.status_code == 200 and "<h1>Tea House</h1>" in detail.text
    assert "olga@tea.example" in detail.text
    assert admin_key not in detail.text and pos_key not in detail.text  # shown once: never again
    assert admin_key not in listing.text

    again = anna.post(PROVISION, {"csrf": hidden(page.text, "csrf"), **provision_fields(name="Tea House 2")})
    assert again.status_code == 409
    assert field_error(again.text, "tenant_id") == "Tenant 'tea-house' already exists."
    assert value_of(again.text, "name") == "Tea House 2" and "data-key-role" not in again.text
    assert api.get("/v1/agency/tenants/tea-house", agency_key).data["name"] == "Tea House"


def test_provisioning_errors_are_shown_at_their_fields_and_keep_what_was_typed(api: Api, agency_key: str) -> None:
    anna = agency_person(api, agency_key, "anna@acme.example")
    token = hidden(anna.get(PROVISION).text, "csrf")
    bad = provision_fields("Bad_Id", name="", plan="gold", currency="rubles", timezone="Mars/Olympus",
                           program_id="Tea!", program_rate_bps="5.5", store_id_0="", store_name_0="Lenina 5",
                           store_region_0="", admin_email="not an address")
    r = anna.post(PROVISION, {"csrf": token, **bad})
    assert r.status_code == 400
    assert field_error(r.text, "tenant_id").startswith("String should match pattern")
    assert field_error(r.text, "name") == "String should have at least 1 character"
    assert field_error(r.text, "plan") == "Input should be 'basic', 'standard' or 'premium'"
    assert field_error(r.text, "currency").startswith("String should match pattern")
    assert field_error(r.text, "timezone") == "Value error, unknown time zone 'Mars/Olympus'"
    assert field_error(r.text, "program_id").startswith("String should match pattern")
    assert field_error(r.text, "program_rate_bps") == "Input should be a valid integer"
    assert field_error(r.text, "store_id_0") == "String should have at least 1 character"
    assert field_error(r.text, "admin_email").startswith("Value error, not an e-mail address")
    assert 'aria-invalid="true"' in r.text and 'aria-describedby="f-timezone-hint f-timezone-error"' in r.text
    assert value_of(r.text, "tenant_id") == "Bad_Id" and value_of(r.text, "timezone") == "Mars/Olympus"
    assert value_of(r.text, "program_rate_bps") == "5.5" and value_of(r.text, "store_name_0") == "Lenina 5"
    assert value_of(r.text, "store_id_2") == "ekb-02" and value_of(r.text, "admin_email") == "not an address"

    r = anna.post(PROVISION, {"csrf": token, **provision_fields("platform")})
    assert r.status_code == 400 and field_error(r.text, "tenant_id") == "Value error, 'platform' is reserved"
    r = anna.post(PROVISION, {"csrf": token, **provision_fields(store_id_2="ekb-01")})
    assert r.status_code == 400 and field_error(r.text, "stores") == "Value error, store ids must be unique"
    r = anna.post(PROVISION, {"csrf": token, **provision_fields(program_rate_bps="0")})
    assert r.status_code == 400
    assert field_error(r.text, "program_rate_bps") == "Value error, a points program needs earning.rate_bps > 0"
    r = anna.post(PROVISION, {"csrf": token, **provision_fields(program_rate_bps="10001")})
    assert field_error(r.text, "program_rate_bps") == "Input should be less than or equal to 10000"

    more = anna.post(PROVISION, {"csrf": token, **provision_fields(action="more_rows")})
    assert more.status_code == 200 and hidden(more.text, "store_rows") == "6"
    assert value_of(more.text, "store_id_2") == "ekb-02" and value_of(more.text, "store_id_5") == ""
    assert "data-key-role" not in more.text
    assert api.get("/v1/agency/tenants", agency_key).data["items"] == []  # nothing was created


def test_edit_suspend_reactivate_and_delete_with_a_typed_confirmation(api: Api, tenant: TenantKeys) -> None:
    anna = agency_person(api, tenant.agency, "anna@acme.example")
    path = f"{TENANTS}/{tenant.tenant_id}"
    page = anna.get(path)
    assert page.status_code == 200 and "<h1>coffee-house LLC</h1>" in page.text
    assert "Usage this month" in page.text and "50 requests/s, 1,000,000 a day" in page.text
    token = hidden(page.text, "csrf")

    r = anna.post(path, {"csrf": token, "name": "Coffee House", "plan": "basic", "timezone": "Asia/Novosibirsk",
                         "support_mfa": "on"})
    assert r.status_code == 303 and r.headers["Location"] == f"{path}?done=saved"
    saved = api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data
    assert (saved["name"], saved["plan"], saved["timezone"], saved["support_mfa"]) == \
        ("Coffee House", "basic", "Asia/Novosibirsk", True)
    shown = anna.get(r.headers["Location"])
    assert "Saved." in shown.text and 'name="support_mfa" type="checkbox" value="on" checked' in shown.text

    r = anna.post(path, {"csrf": token, "name": "Coffee House", "plan": "basic", "timezone": "Mars/Olympus"})
    assert r.status_code == 400
    assert field_error(r.text, "timezone") == "Value error, unknown time zone 'Mars/Olympus'"
    assert value_of(r.text, "timezone") == "Mars/Olympus"
    r = anna.post(path, {"csrf": token, "name": "", "plan": "gold", "timezone": "UTC"})
    assert field_error(r.text, "name") == "String should have at least 1 character"
    assert field_error(r.text, "plan") == "Input should be 'basic', 'standard' or 'premium'"
    unchanged = api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data
    assert (unchanged["timezone"], unchanged["support_mfa"]) == ("Asia/Novosibirsk", True)
    r = anna.post(path, {"csrf": token, "name": "Coffee House", "plan": "basic", "timezone": "Asia/Novosibirsk"})
    assert r.status_code == 303  # the box left unticked turns the setting off
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data["support_mfa"] is False

    r = anna.post(f"{path}/status", {"csrf": token, "status": "suspended"})
    assert r.status_code == 303 and r.headers["Location"] == f"{path}?done=suspended"
    refused = api.get("/v1/whoami", tenant.admin)
    assert refused.status_code == 401 and refused.data["error"]["code"] == "tenant_suspended"
    shown = anna.get(r.headers["Location"])
    assert "Reactivate the tenant" in shown.text and "Suspend the tenant" not in shown.text
    assert anna.post(f"{path}/status", {"csrf": token, "status": "deleting"}).status_code == 400
    r = anna.post(f"{path}/status", {"csrf": token, "status": "active"})
    assert r.status_code == 303 and r.headers["Location"] == f"{path}?done=active"
    assert api.get("/v1/whoami", tenant.admin).status_code == 200

    r = anna.post(f"{path}/delete", {"csrf": token, "confirm": "coffee"})
    assert r.status_code == 400 and field_error(r.text, "confirm") == "must equal the tenant id"
    assert value_of(r.text, "confirm") == "coffee"
    assert api.get("/v1/whoami", tenant.admin).status_code == 200
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data["status"] == "active"
    r = anna.post(f"{path}/delete", {"csrf": token, "confirm": "coffee-house"})
    assert r.status_code == 303 and r.headers["Location"] == f"{TENANTS}?done=deleted"
    assert api.get("/v1/whoami", tenant.admin).data["error"]["code"] == "tenant_suspended"
    listing = anna.get(r.headers["Location"])
    assert "The tenant is being deleted" in listing.text and "Being deleted" in listing.text
    gone = anna.get(path)
    assert gone.status_code == 200 and "Delete the tenant" not in gone.text and 'name="confirm"' not in gone.text


def test_the_tenant_page_lists_its_people_and_invites_more(api: Api, tenant: TenantKeys) -> None:
    anna = agency_person(api, tenant.agency, "anna@acme.example")
    path = f"{TENANTS}/{tenant.tenant_id}"
    token = hidden(anna.get(path).text, "csrf")
    r = anna.post(f"{path}/invitations", {"csrf": token, "email": "not an address", "role": "support"})
    assert r.status_code == 400 and field_error(r.text, "email").startswith("Value error, not an e-mail address")
    assert value_of(r.text, "email") == "not an address"
    r = anna.post(f"{path}/invitations", {"csrf": token, "email": "ivan@coffee.example", "role": "agency"})
    assert r.status_code == 400 and field_error(r.text, "role") == "A tenant member can be: support, tenant_admin."
    r = anna.post(f"{path}/invitations", {"csrf": token, "email": "ivan@coffee.example", "role": "support"})
    assert r.status_code == 303 and r.headers["Location"] == f"{path}?done=invited"
    page = anna.get(r.headers["Location"])
    assert "The invitation is on its way." in page.text and "ivan@coffee.example" in page.text
    assert "Pending" in page.text and "support operator" in page.text
    drain()
    accepted = api.post("/v1/auth/invitations/accept", body={"token": token_from(last_mail("ivan@coffee.example")),
                                                             "password": PASSWORD})
    assert accepted.status_code == 201 and accepted.data["scope"] == "tenant:coffee-house"
    page = anna.get(path)
    assert "Members of this tenant" in page.text and "Accepted" in page.text
    r = anna.post(f"{path}/invitations", {"csrf": token, "email": "ivan@coffee.example", "role": "tenant_admin"})
    assert r.status_code == 409 and field_error(r.text, "email") == "This person is already a member here."
    members = api.get("/v1/agency/tenants/coffee-house/members", tenant.agency).data["items"]
    assert [(m["email"], m["role"]) for m in members] == [("ivan@coffee.example", "support")]


def test_agency_members_invite_disable_enable_remove_and_the_last_admin_stays(api: Api, agency_key: str) -> None:
    anna = agency_person(api, agency_key, "anna@acme.example")
    page = anna.get(MEMBERS)
    assert page.status_code == 200 and "anna@acme.example" in page.text and "(you)" in page.text
    token = hidden(page.text, "csrf")
    r = anna.post(f"{MEMBERS}/invite", {"csrf": token, "email": "bad"})
    assert r.status_code == 400 and field_error(r.text, "email").startswith("Value error, not an e-mail address")
    r = anna.post(f"{MEMBERS}/invite", {"csrf": token, "email": "anna@acme.example"})
    assert r.status_code == 409 and field_error(r.text, "email") == "This person is already a member here."

    r = anna.post(f"{MEMBERS}/invite", {"csrf": token, "email": "boris@acme.example"})
    assert r.status_code == 303 and r.headers["Location"] == f"{MEMBERS}?done=invited"
    drain()
    first_link = token_from(last_mail("boris@acme.example"))
    invitation = next(i for i in api.get("/v1/invitations", agency_key).data["items"]
                      if i["email"] == "boris@acme.example")
    assert (invitation["email"], invitation["role"], invitation["status"]) == ("boris@acme.example", "agency",
                                                                               "pending")
    r = anna.post(f"/console/agency/invitations/{invitation['invitation_id']}/resend", {"csrf": token})
    assert r.status_code == 303 and r.headers["Location"] == f"{MEMBERS}?done=resent"
    drain()
    second_link = token_from(last_mail("boris@acme.example"))
    assert second_link != first_link
    r = anna.post(f"/console/agency/invitations/{invitation['invitation_id']}/revoke", {"csrf": token})
    assert r.status_code == 303 and r.headers["Location"] == f"{MEMBERS}?done=revoked"
    assert "Revoked" in anna.get(r.headers["Location"]).text
    refused = api.post("/v1/auth/invitations/accept", body={"token": second_link, "password": PASSWORD})
    assert refused.status_code == 409

    invite_and_join(api, None, "boris@acme.example", "agency", key=agency_key)
    people = {m["email"]: m["user_id"] for m in api.get("/v1/members", agency_key).data["items"]}
    boris, me = people["boris@acme.example"], people["anna@acme.example"]
    r = anna.post(f"{MEMBERS}/{boris}/status", {"csrf": token, "status": "disabled"})
    assert r.status_code == 303 and r.headers["Location"] == f"{MEMBERS}?done=saved"
    assert _member(api, agency_key, boris)["status"] == "disabled"
    assert 'aria-label="Enable boris@acme.example"' in anna.get(MEMBERS).text
    r = anna.post(f"{MEMBERS}/{boris}/status", {"csrf": token, "status": "active"})
    assert r.status_code == 303 and _member(api, agency_key, boris)["status"] == "active"
    r = anna.post(f"{MEMBERS}/{boris}/remove", {"csrf": token})
    assert r.status_code == 303 and r.headers["Location"] == f"{MEMBERS}?done=removed"
    assert [m["email"] for m in api.get("/v1/members", agency_key).data["items"]] == ["anna@acme.example"]

    last = "A scope must keep at least one active admin; make someone else admin first."
    r = anna.post(f"{MEMBERS}/{me}/status", {"csrf": token, "status": "disabled"})
    assert r.status_code == 409 and last in r.text and 'role="alert"' in r.text
    r = anna.post(f"{MEMBERS}/{me}/remove", {"csrf": token})
    assert r.status_code == 409 and last in r.text
    assert _member(api, agency_key, me)["status"] == "active"
    assert anna.post(f"{MEMBERS}/{me}/status", {"csrf": token, "status": "gone"}).status_code == 400
    assert anna.post(f"{MEMBERS}/nobody-here/remove", {"csrf": token}).status_code == 404


def _member(api: Api, key: str, user_id: str) -> dict[str, Any]:
    return next(m for m in api.get("/v1/members", key).data["items"] if m["user_id"] == user_id)


def test_another_agency_sees_and_changes_nothing_of_this_agencys_tenants_or_people(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    verify_sender()
    invite_and_join(api, None, "anna@acme.example", "agency", key=tenant.agency)
    anna_id = api.get("/v1/members", tenant.agency).data["items"][0]["user_id"]
    rival = agency_person(api, other_tenant.agency, "rita@rival.example")
    listing = rival.get(TENANTS)
    assert listing.status_code == 200 and "fuel-net" in listing.text and "coffee-house" not in listing.text
    path = f"{TENANTS}/{tenant.tenant_id}"
    page = rival.get(path)
    assert page.status_code == 404 and "coffee-house" not in page.text
    token = hidden(rival.get(MEMBERS).text, "csrf")
    for action, fields in [("", {"name": "Taken over", "plan": "basic", "timezone": "UTC"}),
                           ("/status", {"status": "suspended"}), ("/delete", {"confirm": "coffee-house"}),
                           ("/invitations", {"email": "spy@rival.example", "role": "tenant_admin"})]:
        r = rival.post(path + action, {"csrf": token, **fields})
        assert r.status_code == 404 and "coffee-house LLC" not in r.text, action
    for action, fields in [("/status", {"status": "disabled"}), ("/remove", {})]:
        assert rival.post(f"{MEMBERS}/{anna_id}{action}", {"csrf": token, **fields}).status_code == 404
    assert "anna@acme.example" not in rival.get(MEMBERS).text
    theirs = api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data
    assert (theirs["name"], theirs["status"]) == ("coffee-house LLC", "active")
    assert api.get("/v1/agency/tenants/coffee-house/members", tenant.agency).data["items"] == []
    assert api.get("/v1/whoami", tenant.admin).status_code == 200
    assert _member(api, tenant.agency, anna_id)["status"] == "active"


def test_a_tenant_admin_is_refused_every_agency_page(api: Api, tenant: TenantKeys) -> None:
    verify_sender()
    invite_and_join(api, None, "olga@coffee.example", "tenant_admin", key=tenant.admin)
    olga = signed_in(api, "olga@coffee.example", None)
    home = olga.get("/console")
    assert 'href="/console/agency/tenants"' not in home.text
    token = hidden(home.text, "csrf")
    for path in (TENANTS, PROVISION, f"{TENANTS}/{tenant.tenant_id}", MEMBERS):
        assert olga.get(path).status_code == 403, path
    r = olga.post(PROVISION, {"csrf": token, **provision_fields()})
    assert r.status_code == 403 and "data-key-role" not in r.text
    assert olga.post(f"{TENANTS}/{tenant.tenant_id}/status", {"csrf": token, "status": "suspended"}).status_code == 403
    assert api.get("/v1/agency/tenants", tenant.agency).data["items"][0]["status"] == "active"
    assert [t["tenant_id"] for t in api.get("/v1/agency/tenants", tenant.agency).data["items"]] == ["coffee-house"]


def test_hostile_text_in_a_tenant_name_is_shown_as_text_and_pages_speak_russian(api: Api, agency_key: str) -> None:
    anna = agency_person(api, agency_key, "anna@acme.example")
    home = anna.get("/console")
    assert 'href="/console/agency/tenants"' in home.text and 'href="/console/agency/members"' in home.text
    hostile = '<script>alert(1)</script> & "Tea"'
    token = hidden(home.text, "csrf")
    r = anna.post(PROVISION, {"csrf": token, **provision_fields(name=hostile, store_name_0="<b>Lenina</b>")})
    assert r.status_code == 201
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Tea&#34;"
    for page in (r.text, anna.get(TENANTS).text, anna.get(f"{TENANTS}/tea-house").text):
        assert "<script>alert" not in page and escaped in page
    assert "<b>Lenina</b>" not in r.text and "&lt;b&gt;Lenina&lt;/b&gt;" in r.text
    bad = anna.post(PROVISION, {"csrf": token, **provision_fields("x-2", timezone="<img src=x>")})
    assert bad.status_code == 400 and "<img src=x>" not in bad.text and "&lt;img src=x&gt;" in bad.text

    ru = anna.get(f"{TENANTS}?lang=ru")
    assert '<html lang="ru" ' in ru.text and "Клиенты" in ru.text and "Подключить клиента" in ru.text
    ru_page = anna.get(f"{TENANTS}/tea-house?lang=ru")
    assert "Удалить клиента" in ru_page.text and "Приостановить" in ru_page.text
    ru_members = anna.get(f"{MEMBERS}?lang=ru")
    assert "Сотрудники агентства" in ru_members.text
