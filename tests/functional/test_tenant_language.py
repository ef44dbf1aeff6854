"""A tenant's language (ru or en, default ru): set by the agency (API, console, tenant files), read by e-mails.

Its wallet passes' part is in tests/functional/test_wallet_passes.py
(test_the_tenants_language_is_its_passes_first_language_and_a_change_of_it_re_pushes_them_and_the_class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chalicelib.services.program import catalog
from chalicelib.services.tenancy.tenant_files import apply_tenant_file
from chalicelib.storage import directory
from chalicelib.storage.tables import DirectoryRecord, doc_of, tenant_partition
from tests.functional.conftest import Api, TenantKeys, tenant_body
from tests.functional.test_console_agency import PROVISION, TENANTS, agency_person, provision_fields
from tests.functional.test_console_programs import form_of, person
from tests.functional.test_console_sign_in import field_error, hidden
from tests.functional.test_tenant_files_apply import COFFEE, copy_with

DRAFT: dict[str, Any] = {"channel": "email", "subject": "Hello {{ first_name }}",
                         "blocks": [{"type": "text", "text": "Hi {{ first_name }}"}, {"type": "balance"},
                                    {"type": "coupon"}]}
RU = ("Ваш баланс, баллов", "Ваш купон", "Отписаться от рассылки")
EN = ("Your balance, points", "Your coupon", "Unsubscribe")


def _captions(html: str) -> tuple[str, ...]:
    """Which language's captions the HTML part has (each caption with what follows it in the frame)."""
    found = []
    for words in (RU, EN):
        balance, coupon, unsubscribe = words
        if f"{balance}</p>" in html and f"{coupon}</p>" in html and f">{unsubscribe}</a>" in html:
            found.append(words[2])
    return tuple(found)


def _problem(r: Any, field: str) -> list[str]:
    return [d["issue"] for d in r.data["error"]["details"] if d["field"] == field]


def test_the_captions_and_html_lang_follow_the_tenants_language(api: Api, tenant: TenantKeys) -> None:
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data["language"] == "ru"
    ru = api.post("/v1/templates/preview", tenant.admin, DRAFT)
    assert ru.status_code == 200, ru.data
    assert ru.data["html"].startswith('<!DOCTYPE html><html lang="ru" ')
    assert _captions(ru.data["html"]) == ("Отписаться от рассылки",)
    saved = api.post("/v1/templates", tenant.admin, {"id": "hello", "name": "Hello", **DRAFT})
    assert saved.status_code == 201 and saved.data["body"].endswith("Отписаться от рассылки: {{ unsubscribe_url }}")

    changed = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency, {"language": "en"})
    assert changed.status_code == 200 and changed.data["language"] == "en"
    en = api.post("/v1/templates/preview", tenant.admin, DRAFT)
    assert en.data["html"].startswith('<!DOCTYPE html><html lang="en" ')
    assert _captions(en.data["html"]) == ("Unsubscribe",)
    # A saved template's preview for the sample recipient, and a template saved now: its plain text in English.
    sample = api.post("/v1/templates/hello/preview", tenant.admin, {})
    assert sample.data["html"].startswith('<!DOCTYPE html><html lang="en" ')
    assert _captions(sample.data["html"]) == ("Unsubscribe",)
    # The console's editor still sees the Russian plain text saved before as the derived one: an empty field, so
    # saving it again derives it in English.
    page = person(api, tenant, "anna@coffee.example").get("/console/templates/hello")
    assert page.status_code == 200 and form_of(page.text, "/console/templates/hello")["body"] == ""
    again = api.post("/v1/templates", tenant.admin, {"id": "hello-en", "name": "Hello", **DRAFT})
    assert again.data["body"] == ("Hi {{ first_name }}\n\nYour balance, points: {{ balance }}{% if tier %}\nTier: "
                                  "{{ tier }}{% endif %}\n\n{% if coupon_code %}Your coupon: {{ coupon_code }}"
                                  "{% endif %}\n\nUnsubscribe: {{ unsubscribe_url }}")


def test_only_ru_or_en_is_accepted_at_the_field(api: Api, tenant: TenantKeys) -> None:
    for language in ("de", "", "RU", None):
        bad = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency, {"language": language})
        if language is None:  # null: the field left out, nothing changes
            assert bad.status_code == 200 and bad.data["language"] == "ru"
            continue
        assert (bad.status_code, bad.data["error"]["code"]) == (400, "validation_error"), language
        assert _problem(bad, "language") == ["Input should be 'ru' or 'en'"]
    created = api.post("/v1/agency/tenants", tenant.agency, tenant_body("tea-house", language="de"))
    assert created.status_code == 400 and _problem(created, "language") == ["Input should be 'ru' or 'en'"]
    assert api.get("/v1/agency/tenants/tea-house", tenant.agency).status_code == 404
    english = api.post("/v1/agency/tenants", tenant.agency, tenant_body("tea-house", language="en"))
    assert english.status_code == 201 and english.data["tenant"]["language"] == "en"
    assert api.get("/v1/agency/tenants/tea-house", tenant.agency).data["language"] == "en"


def test_a_tenant_stored_before_the_setting_reads_as_russian(api: Api, tenant: TenantKeys) -> None:
    key = (tenant_partition(tenant.tenant_id), directory.TENANT_SK)
    rec = DirectoryRecord.get(*key)
    doc = doc_of(rec)
    assert doc.pop("language") == "ru"
    rec.doc = doc
    rec.save()
    assert "language" not in doc_of(DirectoryRecord.get(*key))
    catalog.forget(tenant.tenant_id)
    stored = directory.get_tenant(tenant.tenant_id)
    assert stored is not None and stored.language == "ru"
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data["language"] == "ru"


def test_the_agency_console_sets_the_language(api: Api, tenant: TenantKeys) -> None:
    anna = agency_person(api, tenant.agency, "anna@acme.example")
    path = f"{TENANTS}/{tenant.tenant_id}"
    page = anna.get(path)
    assert '<option value="ru" selected>Русский</option>' in page.text
    assert '<option value="en">English</option>' in page.text
    token = hidden(page.text, "csrf")
    form = {"csrf": token, "name": "coffee-house LLC", "plan": "standard", "timezone": "Europe/Moscow"}
    r = anna.post(path, {**form, "language": "en"})
    assert r.status_code == 303 and r.headers["Location"] == f"{path}?done=saved"
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data["language"] == "en"
    shown = anna.get(r.headers["Location"])
    assert '<option value="en" selected>English</option>' in shown.text
    assert '<dd lang="en">English</dd>' in shown.text

    r = anna.post(path, {**form, "language": "de"})
    assert r.status_code == 400 and field_error(r.text, "language") == "Input should be 'ru' or 'en'"
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data["language"] == "en"
    r = anna.post(path, form)  # a form without the field (not the page's own) leaves the language as it is
    assert r.status_code == 303 and r.headers["Location"] == f"{path}?done=unchanged"
    assert api.get(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency).data["language"] == "en"


def test_the_agency_console_provisions_a_tenant_in_a_language(api: Api, agency_key: str) -> None:
    anna = agency_person(api, agency_key, "anna@acme.example")
    page = anna.get(PROVISION)
    assert '<option value="ru" selected>Русский</option>' in page.text
    token = hidden(page.text, "csrf")
    bad = anna.post(PROVISION, {"csrf": token, **provision_fields(language="de")})
    assert bad.status_code == 400 and field_error(bad.text, "language") == "Input should be 'ru' or 'en'"
    assert api.get("/v1/agency/tenants", agency_key).data["items"] == []
    r = anna.post(PROVISION, {"csrf": token, **provision_fields(language="en")})
    assert r.status_code == 201, r.text[-800:]
    assert api.get("/v1/agency/tenants/tea-house", agency_key).data["language"] == "en"


def test_a_tenant_file_sets_and_changes_the_language(aws_stack: None, tmp_path: Path) -> None:
    apply_tenant_file(COFFEE)
    tenant = directory.get_tenant("coffee-chain")
    assert tenant is not None and tenant.language == "ru"

    def english(data: dict[str, Any]) -> None:
        data["tenant"]["language"] = "en"

    report = apply_tenant_file(copy_with(tmp_path, COFFEE, english))
    assert "tenant coffee-chain: updated (language)" in report.lines
    tenant = directory.get_tenant("coffee-chain")
    assert tenant is not None and tenant.language == "en"
