"""The console's integrations pages (issue 21, page group 7) through the Chalice test client.

A tenant admin signed in with MFA manages API keys (the secret shown once,
rotation, revocation: the key's API calls then fail), webhook endpoints (a
test ping reaches a loopback receiver and shows in the delivery log), the team
(invitation by e-mail, role, disabling, removal, the last-admin refusal) and
reads the audit trail filtered by person and action. Another tenant's person
gets 404 for every id of this tenant; a support person gets 403 on every page;
hostile text is shown as text.
"""

from __future__ import annotations

import re
from html import unescape

import pytest

from chalicelib.console.pages import pages
from chalicelib.console.routes import integrations
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.people import PASSWORD, invite_and_join, last_mail, token_from, verify_sender
from tests.functional.test_console_sign_in import Browser, field_error, hidden, signed_in
from tests.functional.test_webhooks import Receiver, Sent, feed, hooks, receiver, take  # noqa: F401
from tests.unit.test_console_catalogue import catalogue

BASE = "/console/integrations"
HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
AREA = [p for p in pages() if p.name.startswith("console_integrations_")]


def admin(api: Api, tenant: TenantKeys, email: str) -> Browser:
    """A tenant admin person of `tenant` (invited with the tenant's admin key), signed in with MFA."""
    verify_sender()
    invite_and_join(api, None, email, "tenant_admin", key=tenant.admin)
    return signed_in(api, email, None)


def secret_on(page: str) -> str:
    found = re.search(r'id="f-secret" type="text" readonly value="([^"]+)"', page)
    assert found, "no secret on the page"
    return unescape(found.group(1))


def key_id_on(page: str) -> str:
    found = re.search(r"Key id</dt><dd><code>([^<]+)</code>", page)
    assert found, "no key id on the page"
    return found.group(1)


def alert_on(page: str) -> str:
    found = re.search(r'<div class="alert" role="alert"><p>([^<]*)</p>', page)
    assert found, "no alert on the page"
    return unescape(found.group(1))


def audit_rows(page: str) -> list[tuple[str, str]]:
    """(action, who) of each row of the audit table, as shown."""
    rows = re.findall(r'<th scope="row">[^<]*</th>\s*<td><code>([^<]+)</code></td>\s*<td>\s*(.*?)\s*</td>', page,
                      re.S)
    return [(action, unescape(re.sub(r"<[^>]+>", "", who)).strip()) for action, who in rows]


def user_id_of(api: Api, tenant: TenantKeys, email: str) -> str:
    listed = api.get("/v1/members", tenant.admin).data["items"]
    return next(m["user_id"] for m in listed if m["email"] == email)


def key_id_of(api: Api, key: str) -> str:
    return str(api.get("/v1/whoami", key).data["key_id"])


# --- API keys -----------------------------------------------------------------------------------------------------

def test_a_pos_key_is_shown_once_then_rotated_and_revoked_and_its_calls_fail(api: Api, tenant: TenantKeys) -> None:
    anna = admin(api, tenant, "anna@coffee.example")
    page = anna.get(f"{BASE}/keys")
    assert page.status_code == 200 and page.text.count("<h1>") == 1
    assert "call center" in page.text and 'value="msk-01"' in page.text  # the tenant's keys; its stores to bind
    assert anna.get(f"{BASE}/keys?lang=ru").text.count("API-ключи") >= 1

    r = anna.post(f"{BASE}/keys", {"csrf": anna_csrf(anna), "role": "", "name": HOSTILE, "store_id": ""})
    assert r.status_code == 400 and field_error(r.text, "role").startswith("Input should be")
    assert f'value="{ESCAPED}"' in r.text and HOSTILE not in r.text  # what was typed, kept as text
    r = anna.post(f"{BASE}/keys", {"csrf": anna_csrf(anna), "role": "support", "name": "x", "store_id": "msk-01"})
    assert r.status_code == 400 and field_error(r.text, "store_id") == "Only a pos key can be bound to a store."
    r = anna.post(f"{BASE}/keys", {"csrf": anna_csrf(anna), "role": "pos", "name": "till", "store_id": "nowhere"})
    assert r.status_code == 422 and field_error(r.text, "store_id") == "Store 'nowhere' does not exist in this tenant."
    assert 'aria-invalid="true" aria-describedby="f-store_id-hint f-store_id-error"' in r.text
    r = anna.post(f"{BASE}/keys", {"csrf": anna_csrf(anna), "role": "pos", "name": "", "store_id": ""})
    assert r.status_code == 400 and field_error(r.text, "name") == "String should have at least 1 character"
    r = anna.post(f"{BASE}/keys", {"csrf": anna_csrf(anna), "role": "platform", "name": "x", "store_id": ""})
    assert r.status_code == 400 and field_error(r.text, "role").startswith("A tenant key must have one of these roles")

    made = anna.post(f"{BASE}/keys", {"csrf": anna_csrf(anna), "role": "pos", "name": HOSTILE + " till 3",
                                      "store_id": "msk-01"})
    assert made.status_code == 201, made.text[-800:]
    secret, key_id = secret_on(made.text), key_id_on(made.text)
    assert secret.startswith("lp_pos_coffee-house.") and HOSTILE not in made.text and ESCAPED in made.text
    who = api.get("/v1/whoami", secret)
    assert who.status_code == 200 and who.data["key_id"] == key_id and who.data["store_id"] == "msk-01"
    for path in (f"{BASE}/keys", f"{BASE}/keys/{key_id}", f"{BASE}/keys/{key_id}/revoke", f"{BASE}/audit"):
        shown = anna.get(path)
        assert shown.status_code == 200 and secret not in shown.text, path  # never again
        assert HOSTILE not in shown.text and ESCAPED in shown.text, path

    r = anna.post(f"{BASE}/keys/{key_id}/rotate", {"csrf": anna_csrf(anna), "grace_seconds": "soon"})
    assert r.status_code == 400 and field_error(r.text, "grace_seconds") == "Input should be a valid integer"
    r = anna.post(f"{BASE}/keys/{key_id}/rotate", {"csrf": anna_csrf(anna), "grace_seconds": "9999999"})
    assert r.status_code == 400 and field_error(r.text, "grace_seconds").startswith("Input should be less than")
    rotated = anna.post(f"{BASE}/keys/{key_id}/rotate", {"csrf": anna_csrf(anna), "grace_seconds": "0"})
    assert rotated.status_code == 201 and "The old key has stopped working." in rotated.text
    new_secret, new_id = secret_on(rotated.text), key_id_on(rotated.text)
    assert new_secret != secret and new_id != key_id
    assert api.get("/v1/whoami", secret).status_code == 401
    assert api.get("/v1/whoami", new_secret).data["store_id"] == "msk-01"
    assert new_secret not in anna.get(f"{BASE}/keys/{new_id}").text
    again = anna.post(f"{BASE}/keys/{key_id}/rotate", {"csrf": anna_csrf(anna), "grace_seconds": "0"})
    assert again.status_code == 404 or (again.status_code == 409 and "already revoked" in again.text)

    confirm = anna.get(f"{BASE}/keys/{new_id}/revoke")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    r = anna.post(f"{BASE}/keys/{new_id}/revoke", {"csrf": anna_csrf(anna)})
    assert r.status_code == 303 and r.headers["Location"] == f"{BASE}/keys?done=revoked"
    refused = api.get("/v1/whoami", new_secret)
    assert refused.status_code == 401 and refused.data["error"]["code"] == "revoked_key"
    listed = api.get("/v1/keys", tenant.admin).data["items"]
    assert {k["key_id"]: k["status"] for k in listed}[new_id] == "revoked"

    graced = anna.post(f"{BASE}/keys", {"csrf": anna_csrf(anna), "role": "support", "name": "CRM", "store_id": ""})
    crm_id, crm_secret = key_id_on(graced.text), secret_on(graced.text)
    r = anna.post(f"{BASE}/keys/{crm_id}/rotate", {"csrf": anna_csrf(anna), "grace_seconds": "3600"})
    assert r.status_code == 201 and "The old key keeps working until" in r.text
    assert api.get("/v1/whoami", crm_secret).status_code == 200  # the grace period
    assert "expiring" in anna.get(f"{BASE}/keys/{crm_id}").text


def anna_csrf(browser: Browser) -> str:
    """The session's CSRF token, as every form of ours carries it."""
    token = getattr(browser, "_csrf", None)
    if token is None:
        token = hidden(browser.get("/console").text, "csrf")
        browser._csrf = token  # type: ignore[attr-defined]
    return str(token)


# --- webhooks -----------------------------------------------------------------------------------------------------

def test_an_endpoint_is_added_pinged_with_its_delivery_logged_edited_disabled_and_deleted(
        api: Api, tenant: TenantKeys, hooks: list[Sent], receiver: Receiver) -> None:  # noqa: F811
    anna = admin(api, tenant, "anna@coffee.example")
    csrf = anna_csrf(anna)
    assert anna.get(f"{BASE}/webhooks").status_code == 200
    r = anna.post(f"{BASE}/webhooks", {"csrf": csrf, "url": receiver.url, "description": "ERP"})
    assert r.status_code == 400 and field_error(r.text, "events") == "List should have at least 1 item after " \
                                                                      "validation, not 0"
    assert f'value="{receiver.url}"' in r.text
    r = anna.post(f"{BASE}/webhooks", {"csrf": csrf, "url": "https://10.1.2.3/x", "event:card.issued": "on",
                                       "description": HOSTILE})
    assert r.status_code == 422 and "private" in field_error(r.text, "url")
    assert 'value="https://10.1.2.3/x"' in r.text and f'value="{ESCAPED}"' in r.text
    assert re.search(r'name="event:card.issued" value="on" checked', r.text)  # the ticks kept

    made = anna.post(f"{BASE}/webhooks", {"csrf": csrf, "url": receiver.url, "event:card.issued": "on",
                                          "event:report.ready": "on", "description": HOSTILE})
    assert made.status_code == 201, made.text[-800:]
    secret = secret_on(made.text)
    assert secret.startswith("whsec_") and HOSTILE not in made.text
    [hook] = api.get("/v1/webhooks", tenant.admin).data["items"]
    assert hook["events"] == ["card.issued", "report.ready"] and hook["description"] == HOSTILE
    listed = anna.get(f"{BASE}/webhooks")
    assert receiver.url in listed.text and ESCAPED in listed.text and secret not in listed.text
    assert HOSTILE not in listed.text

    r = anna.post(f"{BASE}/webhooks/{hook['id']}/ping", {"csrf": csrf})
    assert r.status_code == 303 and r.headers["Location"] == f"{BASE}/webhooks/{hook['id']}?done=pinged"
    assert feed(take()) == {"batchItemFailures": []}
    [got] = receiver.requests
    assert got.event["type"] == "webhook.ping"
    detail = anna.get(f"{BASE}/webhooks/{hook['id']}")
    assert detail.status_code == 200 and secret not in detail.text and HOSTILE not in detail.text
    log = re.search(r"<th scope=\"row\"><code>([^<]+)</code></th>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>", detail.text)
    assert log is not None and log.groups() == (got.event["id"], "webhook.ping", "delivered")
    assert "HTTP 200" in detail.text

    r = anna.post(f"{BASE}/webhooks/{hook['id']}", {"csrf": csrf, "url": "ftp://hooks.example.com/x",
                                                    "event:purchase.processed": "on", "description": "ERP"})
    assert r.status_code == 422 and "https" in field_error(r.text, "url")
    assert 'value="ftp://hooks.example.com/x"' in r.text
    assert re.search(r'name="event:purchase.processed" value="on" checked', r.text)
    assert api.get(f"/v1/webhooks/{hook['id']}", tenant.admin).data["events"] == ["card.issued", "report.ready"]
    r = anna.post(f"{BASE}/webhooks/{hook['id']}", {"csrf": csrf, "url": receiver.url,
                                                    "event:purchase.processed": "on", "description": "ERP"})
    assert r.status_code == 303
    now = api.get(f"/v1/webhooks/{hook['id']}", tenant.admin).data
    assert (now["events"], now["description"]) == (["purchase.processed"], "ERP")

    r = anna.post(f"{BASE}/webhooks/{hook['id']}/enabled", {"csrf": csrf, "enabled": "false"})
    assert r.status_code == 303 and api.get(f"/v1/webhooks/{hook['id']}", tenant.admin).data["enabled"] is False
    r = anna.post(f"{BASE}/webhooks/{hook['id']}/ping", {"csrf": csrf})
    assert r.status_code == 409 and alert_on(r.text).startswith("The endpoint is disabled")
    r = anna.post(f"{BASE}/webhooks/{hook['id']}/enabled", {"csrf": csrf, "enabled": "true"})
    assert r.status_code == 303 and api.get(f"/v1/webhooks/{hook['id']}", tenant.admin).data["enabled"] is True

    rotated = anna.post(f"{BASE}/webhooks/{hook['id']}/rotate-secret", {"csrf": csrf})
    assert rotated.status_code == 201 and secret_on(rotated.text).startswith("whsec_")
    assert secret_on(rotated.text) != secret and "24 hours" in rotated.text

    assert anna.get(f"{BASE}/webhooks/{hook['id']}/delete").status_code == 200
    r = anna.post(f"{BASE}/webhooks/{hook['id']}/delete", {"csrf": csrf})
    assert r.status_code == 303 and r.headers["Location"] == f"{BASE}/webhooks?done=deleted"
    assert api.get("/v1/webhooks", tenant.admin).data["items"] == []
    assert anna.get(f"{BASE}/webhooks/{hook['id']}").status_code == 404


# --- the team -----------------------------------------------------------------------------------------------------

def test_the_team_invite_role_disable_remove_and_the_last_admin(api: Api, tenant: TenantKeys) -> None:
    anna = admin(api, tenant, "anna@coffee.example")
    csrf = anna_csrf(anna)
    anna_id = user_id_of(api, tenant, "anna@coffee.example")

    r = anna.post(f"{BASE}/team/invitations", {"csrf": csrf, "email": "not an address", "role": "support"})
    assert r.status_code == 400 and "not an e-mail address" in field_error(r.text, "email")
    assert 'value="not an address"' in r.text and re.search(r'<option value="support" selected>', r.text)
    r = anna.post(f"{BASE}/team/invitations", {"csrf": csrf, "email": "sam@coffee.example", "role": "agency"})
    assert r.status_code == 400 and field_error(r.text, "role") == "A tenant member can be: support, tenant_admin."
    r = anna.post(f"{BASE}/team/invitations", {"csrf": csrf, "email": "anna@coffee.example", "role": "support"})
    assert r.status_code == 409 and field_error(r.text, "email") == "This person is already a member here."

    r = anna.post(f"{BASE}/team/invitations", {"csrf": csrf, "email": "Sam@Coffee.example", "role": "support"})
    assert r.status_code == 303 and r.headers["Location"] == f"{BASE}/team?done=invited"
    drain()
    first_token = token_from(last_mail("sam@coffee.example"))
    [pending] = [i for i in api.get("/v1/invitations", tenant.admin).data["items"]
                 if i["email"] == "sam@coffee.example"]
    team = anna.get(f"{BASE}/team")
    assert "sam@coffee.example" in team.text and "pending" in team.text
    r = anna.post(f"{BASE}/team/invitations/{pending['invitation_id']}/resend", {"csrf": csrf})
    assert r.status_code == 303 and r.headers["Location"] == f"{BASE}/team?done=resent"
    drain()
    token = token_from(last_mail("sam@coffee.example"))
    assert token != first_token
    assert api.post("/v1/auth/invitations/accept", body={"token": first_token, "password": PASSWORD}).status_code != 201
    assert api.post("/v1/auth/invitations/accept", body={"token": token, "password": PASSWORD}).status_code == 201
    r = anna.post(f"{BASE}/team/invitations/{pending['invitation_id']}/revoke", {"csrf": csrf})
    assert r.status_code == 409 and "accepted" in alert_on(r.text)  # the API's refusal, on the page

    anna.post(f"{BASE}/team/invitations", {"csrf": csrf, "email": "zoe@coffee.example", "role": "support"})
    zoe = next(i for i in api.get("/v1/invitations", tenant.admin).data["items"] if i["email"] == "zoe@coffee.example")
    assert anna.post(f"{BASE}/team/invitations/{zoe['invitation_id']}/revoke", {"csrf": csrf}).status_code == 303
    assert next(i for i in api.get("/v1/invitations", tenant.admin).data["items"]
                if i["email"] == "zoe@coffee.example")["status"] == "revoked"

    sam_id = user_id_of(api, tenant, "sam@coffee.example")
    sam = signed_in(api, "sam@coffee.example", None)  # support: no MFA here
    team = anna.get(f"{BASE}/team")
    row = re.search(rf'<a href="{BASE}/team/{sam_id}">sam@coffee.example</a></th>\s*<td>([^<]+)</td>\s*'
                    r"<td>([^<]+)</td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>", team.text)
    assert row is not None and row.groups() == ("support operator", "active", "Off", "1")

    r = anna.post(f"{BASE}/team/{sam_id}/role", {"csrf": csrf, "role": "pos"})
    assert r.status_code == 400 and field_error(r.text, "role").startswith("Input should be")
    r = anna.post(f"{BASE}/team/{sam_id}/role", {"csrf": csrf, "role": "tenant_admin"})
    assert r.status_code == 303 and r.headers["Location"] == f"{BASE}/team/{sam_id}?done=saved"
    assert "administrator" in anna.get(f"{BASE}/team/{sam_id}").text
    assert anna.post(f"{BASE}/team/{sam_id}/role", {"csrf": csrf, "role": "support"}).status_code == 303
    assert next(m for m in api.get("/v1/members", tenant.admin).data["items"] if m["user_id"] == sam_id)["role"] \
        == "support"

    member = anna.get(f"{BASE}/team/{sam_id}")
    assert member.status_code == 200 and "No open sessions." not in member.text
    r = anna.post(f"{BASE}/team/{sam_id}/end-sessions", {"csrf": csrf})
    assert r.status_code == 303 and "No open sessions." in anna.get(f"{BASE}/team/{sam_id}").text
    assert sam.get("/console").status_code == 303  # signed out
    r = anna.post(f"{BASE}/team/{sam_id}/status", {"csrf": csrf, "status": "disabled"})
    assert r.status_code == 303 and r.headers["Location"] == f"{BASE}/team/{sam_id}?done=disabled"
    assert ">disabled<" in anna.get(f"{BASE}/team/{sam_id}").text
    assert anna.post(f"{BASE}/team/{sam_id}/status", {"csrf": csrf, "status": "active"}).status_code == 303
    r = anna.post(f"{BASE}/team/{sam_id}/mfa-reset", {"csrf": csrf})
    assert r.status_code == 303 and r.headers["Location"] == f"{BASE}/team/{sam_id}?done=mfa"

    for refused in (anna.post(f"{BASE}/team/{anna_id}/role", {"csrf": csrf, "role": "support"}),
                    anna.post(f"{BASE}/team/{anna_id}/status", {"csrf": csrf, "status": "disabled"}),
                    anna.post(f"{BASE}/team/{anna_id}/remove", {"csrf": csrf})):
        assert refused.status_code == 409 and alert_on(refused.text) == (
            "A scope must keep at least one active admin; make someone else admin first."), refused.text[-600:]
    assert "administrator" in anna.get(f"{BASE}/team/{anna_id}").text

    assert "sam@coffee.example" in anna.get(f"{BASE}/team/{sam_id}/remove").text
    r = anna.post(f"{BASE}/team/{sam_id}/remove", {"csrf": csrf})
    assert r.status_code == 303 and r.headers["Location"] == f"{BASE}/team?done=removed"
    assert [m["email"] for m in api.get("/v1/members", tenant.admin).data["items"]] == ["anna@coffee.example"]
    assert anna.get(f"{BASE}/team/{sam_id}").status_code == 404
    assert f"{BASE}/team/{sam_id}" not in anna.get(f"{BASE}/team").text


# --- the audit trail ----------------------------------------------------------------------------------------------

def test_the_audit_trail_by_person_action_and_key_newest_first_and_paged(api: Api, tenant: TenantKeys) -> None:
    anna = admin(api, tenant, "anna@coffee.example")
    csrf = anna_csrf(anna)
    assert anna.post(f"{BASE}/keys", {"csrf": csrf, "role": "pos", "name": HOSTILE, "store_id": ""}).status_code \
        == 201
    assert anna.post(f"{BASE}/team/invitations", {"csrf": csrf, "email": "sam@coffee.example",
                                                  "role": "support"}).status_code == 303
    assert api.post("/v1/keys", tenant.admin, {"role": "pos", "name": "made with a key"}).status_code == 201
    admin_key = key_id_of(api, tenant.admin)

    mine = anna.get(f"{BASE}/audit?actor=anna@coffee.example")
    assert mine.status_code == 200
    assert audit_rows(mine.text) == [("member.invited", "anna@coffee.example"), ("key.created", "anna@coffee.example"),
                                     ("member.joined", "anna@coffee.example")]
    assert HOSTILE not in mine.text and ESCAPED in mine.text  # the key's name in the entry's details
    assert audit_rows(anna.get(f"{BASE}/audit?actor=ANNA@coffee.example&action=key.").text) == [
        ("key.created", "anna@coffee.example")]
    by_key = audit_rows(anna.get(f"{BASE}/audit?actor={admin_key}").text)
    assert by_key[0] == ("key.created", f"key {admin_key} (administrator)")
    assert {who for _, who in by_key} == {f"key {admin_key} (administrator)"}
    assert ("member.invited", f"key {admin_key} (administrator)") in by_key  # anna's own invitation

    everything = audit_rows(anna.get(f"{BASE}/audit").text)
    assert everything[:3] == [("key.created", f"key {admin_key} (administrator)"),
                              ("member.invited", "anna@coffee.example"), ("key.created", "anna@coffee.example")]
    paged: list[tuple[str, str]] = []
    url: str | None = f"{BASE}/audit?limit=2"
    while url:
        page = anna.get(url)
        assert page.status_code == 200
        paged += audit_rows(page.text)
        found = re.search(r'<p class="int-pager"><a href="([^"]+)">', page.text)
        url = unescape(found.group(1)) if found else None
    assert paged == everything

    bad = anna.get(f"{BASE}/audit?action=" + "x" * 61)
    assert bad.status_code == 400 and field_error(bad.text, "action").startswith("String should have at most 60")
    assert anna.get(f"{BASE}/audit?cursor=nonsense").status_code == 400


# --- who may see what ---------------------------------------------------------------------------------------------

def test_another_tenants_person_gets_404_and_a_support_person_403_everywhere(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys, hooks: list[Sent]) -> None:  # noqa: F811
    verify_sender()
    invite_and_join(api, None, "anna@coffee.example", "tenant_admin", key=tenant.admin)
    invite_and_join(api, None, "sam@coffee.example", "support", key=tenant.admin)
    assert api.post("/v1/invitations", tenant.admin, {"email": "zoe@coffee.example", "role": "support"}
                    ).status_code == 201
    hook = api.post("/v1/webhooks", tenant.admin, {"url": "https://hooks.example.com/x", "events": ["card.issued"],
                                                   "description": "coffee ERP"}).data
    made = api.post("/v1/keys", tenant.admin, {"role": "pos", "name": "coffee till"}).data
    ids = {"key_id": made["key_id"], "webhook_id": hook["id"], "user_id": user_id_of(api, tenant, "anna@coffee.example"),
           "invitation_id": next(i["invitation_id"] for i in api.get("/v1/invitations", tenant.admin).data["items"]
                                 if i["email"] == "zoe@coffee.example")}
    ivan = admin(api, other_tenant, "ivan@fuel.example")
    sam = signed_in(api, "sam@coffee.example", None)
    ivan_csrf, sam_csrf = anna_csrf(ivan), anna_csrf(sam)
    assert len(AREA) >= 25

    for spec in AREA:
        path = spec.path.format(**ids)
        form = {"csrf": sam_csrf, "role": "support", "status": "active", "enabled": "true", "grace_seconds": "0",
                "name": "x", "email": "x@coffee.example", "url": "https://hooks.example.com/y",
                "event:card.issued": "on"}
        r = sam.get(path) if spec.method == "GET" else sam.post(path, form)
        assert r.status_code == 403, (spec.method, path, r.status_code)
        assert "coffee till" not in r.text and "coffee ERP" not in r.text

        r = ivan.get(path) if spec.method == "GET" else ivan.post(path, {**form, "csrf": ivan_csrf})
        if "{" in spec.path:
            assert r.status_code == 404, (spec.method, path, r.status_code)
        else:
            assert r.status_code in (200, 201, 303), (spec.method, path, r.status_code, r.text[-400:])
        for theirs in ("coffee till", "coffee ERP", "anna@coffee.example", "zoe@coffee.example", made["key_id"]):
            assert theirs not in r.text, (spec.method, path, theirs)

    assert api.get(f"/v1/webhooks/{hook['id']}", tenant.admin).data["enabled"] is True
    assert {m["email"] for m in api.get("/v1/members", tenant.admin).data["items"]} == {
        "anna@coffee.example", "sam@coffee.example"}
    assert {k["key_id"]: k["status"] for k in api.get("/v1/keys", tenant.admin).data["items"]}[made["key_id"]] \
        == "active"
    assert next(i for i in api.get("/v1/invitations", tenant.admin).data["items"]
                if i["email"] == "zoe@coffee.example")["status"] == "pending"
    assert "Integrations" not in sam.get("/console").text  # not in a support person's navigation


def test_every_label_these_pages_show_by_value_has_its_russian() -> None:
    russian = catalogue()
    shown = integrations.LABELS | {label for _, label, _ in integrations.TABS} | {"Integrations"}
    assert sorted(m for m in shown if not russian.get(("", m))) == []


@pytest.mark.parametrize("path", ["", "/keys", "/team", "/audit", "/webhooks"])
def test_signed_out_visitors_go_to_sign_in(api: Api, path: str) -> None:
    r = Browser(api).get(BASE + path)
    assert r.status_code == 303 and r.headers["Location"] == f"/console/sign-in?next={BASE}{path}"


def test_an_agency_person_manages_the_agencys_own_keys_team_and_audit(api: Api, platform_key: str,
                                                                      agency_key: str) -> None:
    verify_sender()
    invite_and_join(api, None, "olga@acme.example", "agency", key=platform_key,
                    path="/v1/platform/agencies/acme-agency/invitations")
    olga = signed_in(api, "olga@acme.example", None)
    hub = olga.get(BASE)
    assert hub.status_code == 200 and f"{BASE}/keys" in hub.text and f"{BASE}/webhooks" not in hub.text
    assert olga.get(f"{BASE}/webhooks").status_code == 403  # a tenant's admins only, as /v1/webhooks
    keys_page = olga.get(f"{BASE}/keys")
    assert keys_page.status_code == 200 and '<option value="agency">' in keys_page.text
    assert 'name="store_id"' not in keys_page.text and '<option value="pos">' not in keys_page.text
    made = olga.post(f"{BASE}/keys", {"csrf": anna_csrf(olga), "role": "agency", "name": "billing", "store_id": ""})
    assert made.status_code == 201 and secret_on(made.text).startswith("lp_agy_acme-agency.")
    assert key_id_on(made.text) in {k["key_id"] for k in api.get("/v1/keys", agency_key).data["items"]}
    team = olga.get(f"{BASE}/team")
    assert "olga@acme.example" in team.text and '<option value="agency">' in team.text
    assert '<option value="support">' not in team.text
    assert audit_rows(olga.get(f"{BASE}/audit?actor=olga@acme.example").text) == [
        ("key.created", "olga@acme.example"), ("member.joined", "olga@acme.example")]
