"""The member site's sign-up and profile ask every personal field the tenant collects, children and preferences
included (minimal-data mode respected), with the API's own checks: errors at the field, everything typed kept.

Attacks: script in every field shows as text; an oversized field is refused at its field; an erased member
signing up again with the same phone gets a clean new account.
"""

from __future__ import annotations

import re
from html import unescape

from tests.functional.conftest import Api, TenantKeys
from tests.functional.member_helpers import customer_of, member_signed_up, send_sign_up, site, to_sign_up_form
from tests.functional.test_console_sign_in import field_error, hidden

PHONE = "+79161234567"
OTHER_PHONE = "+79169876543"
SCRIPT = '<script>alert(1)</script>"'
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&#34;"


def value_of(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" type="[a-z]+" value="([^"]*)"', page)
    assert found, f"no input {name}"
    return unescape(found.group(1))


def selected(page: str, name: str) -> str:
    block = re.search(rf'<select id="f-{name}" name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert block, f"no select {name}"
    chosen = re.search(r'<option value="([^"]*)" selected>', block.group(1))
    return chosen.group(1) if chosen else ""


def errors_of(page: str) -> dict[str, str]:
    return {name: unescape(text) for name, text in re.findall(r'<p class="error" id="f-([\w]+)-error">([^<]*)</p>',
                                                              page)}


def test_the_sign_up_form_asks_children_and_preferences_and_stores_them(api: Api, tenant: TenantKeys) -> None:
    browser, form = to_sign_up_form(api, tenant.tenant_id, PHONE)
    for name in ("first_name", "last_name", "middle_name", "email", "gender", "birth_date", "preferences",
                 "child_1_name", "child_1_birth_date", "child_1_gender", "child_3_name"):
        assert f'name="{name}"' in form.text, name
    assert 'name="child_4_name"' not in form.text  # three rows to start with
    assert "<legend>Children (optional)</legend>" in form.text and "<legend>Child 2</legend>" in form.text
    done = send_sign_up(browser, tenant.tenant_id, form.text, first_name="Anna", child_1_name="Masha",
                        child_1_birth_date="2019-04-30", child_1_gender="female", child_3_name="Petya",
                        child_3_gender="male", preferences="coffee, desserts; kids menu, coffee")
    assert done.status_code == 303, errors_of(done.text)
    data = customer_of(api, tenant, PHONE).data
    assert data["children"] == [{"name": "Masha", "birth_date": "2019-04-30", "gender": "female"},
                                {"name": "Petya", "birth_date": None, "gender": "male"}]
    assert data["preferences"] == ["coffee", "desserts", "kids menu"]
    # The profile page shows them, a row more than filled (the second row kept empty is dropped).
    profile = browser.get(f"{site(tenant.tenant_id)}/profile")
    assert profile.status_code == 200
    assert value_of(profile.text, "child_1_name") == "Masha" and value_of(profile.text, "child_2_name") == "Petya"
    assert value_of(profile.text, "child_1_birth_date") == "2019-04-30"
    assert selected(profile.text, "child_1_gender") == "female" and selected(profile.text, "child_2_gender") == "male"
    assert value_of(profile.text, "preferences") == "coffee, desserts, kids menu"
    assert 'name="child_3_name"' in profile.text and 'name="child_4_name"' not in profile.text


def test_errors_stay_at_their_fields_and_everything_typed_is_kept(api: Api, tenant: TenantKeys) -> None:
    browser, form = to_sign_up_form(api, tenant.tenant_id, PHONE)
    typed = {"first_name": "Anna", "email": "anna@example.com", "child_1_name": "Masha",
             "child_1_birth_date": "2019-02-30", "child_2_name": "Petya", "child_2_gender": "robot",
             "child_3_birth_date": "2020-01-01", "preferences": "coffee, kids/menu"}
    refused = send_sign_up(browser, tenant.tenant_id, form.text, **typed)
    assert refused.status_code == 400
    assert errors_of(refused.text) == {
        "child_1_birth_date": "Enter a date such as 2018-04-30.",
        "child_2_gender": "Choose one of the options.",
        "preferences": "List up to 30 interests, separated by commas: each up to 40 letters or digits (spaces, "
                       "dots, colons and hyphens inside)."}
    for name in ("first_name", "email", "child_1_name", "child_1_birth_date", "child_2_name",
                 "child_3_birth_date", "preferences"):
        assert value_of(refused.text, name) == typed[name], name
    assert 'name="child_4_name"' in refused.text  # the last filled row and one more
    assert customer_of(api, tenant, PHONE).status_code == 404
    # A wrong referral code (the service's refusal, not the form's): at its field, the children still there.
    wrong = send_sign_up(browser, tenant.tenant_id, refused.text, **{**typed, "child_1_birth_date": "2019-02-28",
                                                                      "child_2_gender": "male",
                                                                      "preferences": "coffee"},
                         referral_code="NOPE1234")
    assert wrong.status_code == 422
    assert errors_of(wrong.text) == {"referral_code": "No member has this referral code. Check it or leave it empty."}
    assert value_of(wrong.text, "child_2_name") == "Petya" and selected(wrong.text, "child_2_gender") == "male"
    assert value_of(wrong.text, "preferences") == "coffee" and value_of(wrong.text, "referral_code") == "NOPE1234"
    assert customer_of(api, tenant, PHONE).status_code == 404
    # In Russian too, at the same fields.
    ru_browser, ru_form = to_sign_up_form(api, tenant.tenant_id, OTHER_PHONE, language="ru")
    ru = send_sign_up(ru_browser, tenant.tenant_id, ru_form.text, child_1_birth_date="2019-02-30",
                      preferences="a/b")
    assert ru.status_code == 400 and "<legend>Дети (необязательно)</legend>" in ru.text
    assert field_error(ru.text, "child_1_birth_date") == "Введите дату, например 2018-04-30."
    assert field_error(ru.text, "preferences").startswith("Перечислите до 30 интересов")


def test_minimal_data_mode_hides_children_and_preferences_and_never_stores_them(
        api: Api, tenant: TenantKeys) -> None:
    changed = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency,
                        {"privacy": {"disabled_fields": ["children", "preferences", "gender"]}})
    assert changed.status_code == 200, changed.data
    browser, form = to_sign_up_form(api, tenant.tenant_id, PHONE)
    assert 'name="child_1_name"' not in form.text and 'name="preferences"' not in form.text
    assert 'name="gender"' not in form.text and "Children" not in form.text
    assert 'name="first_name"' in form.text and 'name="birth_date"' in form.text
    done = send_sign_up(browser, tenant.tenant_id, form.text, first_name="Olga", child_1_name="Sneaky",
                        preferences="sneaky", gender="female")
    assert done.status_code == 303, errors_of(done.text)
    data = customer_of(api, tenant, PHONE).data
    assert (data["first_name"], data["children"], data["preferences"], data["gender"]) == ("Olga", None, None, None)
    profile = browser.get(f"{site(tenant.tenant_id)}/profile")
    assert 'name="child_1_name"' not in profile.text and 'name="preferences"' not in profile.text
    saved = browser.post(f"{site(tenant.tenant_id)}/profile", {"csrf": hidden(profile.text, "csrf"),
                                                                "first_name": "Olga", "child_1_name": "Sneaky",
                                                                "preferences": "sneaky"})
    assert saved.status_code == 303
    data = customer_of(api, tenant, PHONE).data
    assert (data["children"], data["preferences"]) == (None, None)


def test_the_profile_page_edits_children_and_preferences_with_errors_at_the_field(
        api: Api, tenant: TenantKeys) -> None:
    browser = member_signed_up(api, tenant.tenant_id, PHONE, first_name="Anna", child_1_name="Masha",
                               preferences="coffee")
    profile = browser.get(f"{site(tenant.tenant_id)}/profile")
    csrf = hidden(profile.text, "csrf")
    form = {"csrf": csrf, "first_name": "Anna", "child_1_name": "Masha", "child_1_birth_date": "2019-04-30",
            "child_2_name": "x" * 121, "preferences": "coffee, tea"}
    bad = browser.post(f"{site(tenant.tenant_id)}/profile", form)
    assert bad.status_code == 400
    assert errors_of(bad.text) == {"child_2_name": "Enter a name of at most 120 characters on one line."}
    assert value_of(bad.text, "child_2_name") == "x" * 121 and value_of(bad.text, "preferences") == "coffee, tea"
    assert customer_of(api, tenant, PHONE).data["children"] == [{"name": "Masha", "birth_date": None,
                                                                  "gender": None}]
    good = browser.post(f"{site(tenant.tenant_id)}/profile", {**form, "child_2_name": "Petya"})
    assert good.status_code == 303 and "saved=1" in good.headers["Location"]
    data = customer_of(api, tenant, PHONE).data
    assert [c["name"] for c in data["children"]] == ["Masha", "Petya"]
    assert data["children"][0]["birth_date"] == "2019-04-30" and data["preferences"] == ["coffee", "tea"]
    # Emptied, they are removed.
    cleared = browser.post(f"{site(tenant.tenant_id)}/profile", {"csrf": csrf, "first_name": "Anna"})
    assert cleared.status_code == 303
    data = customer_of(api, tenant, PHONE).data
    assert (data["children"], data["preferences"], data["first_name"]) == (None, None, "Anna")


def test_script_in_every_field_shows_as_text(api: Api, tenant: TenantKeys) -> None:
    browser, form = to_sign_up_form(api, tenant.tenant_id, PHONE)
    fields = ("first_name", "last_name", "middle_name", "email", "birth_date", "gender", "referral_code",
              "card_number", "preferences", "child_1_name", "child_1_birth_date", "child_1_gender")
    refused = send_sign_up(browser, tenant.tenant_id, form.text, card="plastic",
                           **{name: SCRIPT for name in fields})
    assert refused.status_code == 400
    assert "<script>" not in refused.text and ESCAPED in refused.text
    for name in ("email", "birth_date", "gender", "referral_code", "card_number", "preferences",
                 "child_1_birth_date", "child_1_gender"):
        assert name in errors_of(refused.text), name
    for name in ("first_name", "last_name", "email", "preferences", "child_1_name", "child_1_birth_date"):
        assert value_of(refused.text, name) == SCRIPT, name
    # Names may hold any characters on one line: stored as typed, always shown escaped.
    done = send_sign_up(browser, tenant.tenant_id, refused.text, first_name=SCRIPT, child_1_name=SCRIPT,
                        card="virtual")
    assert done.status_code == 303, errors_of(done.text)
    data = customer_of(api, tenant, PHONE).data
    assert data["first_name"] == SCRIPT and data["children"][0]["name"] == SCRIPT
    for path in ("/", "/profile"):
        page = browser.get(f"{site(tenant.tenant_id)}{path}")
        assert page.status_code == 200 and "<script>" not in page.text and ESCAPED in page.text, path


def test_an_oversized_field_is_refused_at_its_field(api: Api, tenant: TenantKeys) -> None:
    browser, form = to_sign_up_form(api, tenant.tenant_id, PHONE)
    huge = "Я" * 5000
    refused = send_sign_up(browser, tenant.tenant_id, form.text, first_name=huge, email="a" * 300 + "@example.com",
                           child_1_name=huge, preferences="tea", child_2_name="Masha",
                           referral_code="A" * 300)
    assert refused.status_code == 400
    assert errors_of(refused.text) == {
        "first_name": "Enter a name of at most 120 characters on one line.",
        "email": "Enter an e-mail address such as name@example.com.",
        "child_1_name": "Enter a name of at most 120 characters on one line.",
        "referral_code": "A referral code is 4 to 16 letters and digits."}
    assert value_of(refused.text, "child_2_name") == "Masha"
    # Thirty-one different interests are one too many, at the field.
    many = send_sign_up(browser, tenant.tenant_id, refused.text, preferences=", ".join(f"t{i}" for i in range(31)))
    assert many.status_code == 400 and list(errors_of(many.text)) == ["preferences"]
    long_one = send_sign_up(browser, tenant.tenant_id, many.text, preferences="coffee, " + "x" * 41)
    assert long_one.status_code == 400 and list(errors_of(long_one.text)) == ["preferences"]
    assert customer_of(api, tenant, PHONE).status_code == 404
    done = send_sign_up(browser, tenant.tenant_id, long_one.text, preferences=", ".join(f"t{i}" for i in range(30)))
    assert done.status_code == 303
    assert len(customer_of(api, tenant, PHONE).data["preferences"]) == 30


def test_an_erased_member_signing_up_again_gets_a_clean_new_account(api: Api, tenant: TenantKeys) -> None:
    old = member_signed_up(api, tenant.tenant_id, PHONE, first_name="Vera", child_1_name="Masha",
                           preferences="espresso", email="vera@example.com")
    before = customer_of(api, tenant, PHONE).data
    erased = api.post(f"/v1/customers/{before['customer_id']}/erase", tenant.admin,
                      {"confirm": "erase", "reason": "asked by the member"})
    assert erased.status_code == 200, erased.data
    assert old.get(f"{site(tenant.tenant_id)}/profile").status_code == 303  # the old session is over
    browser, form = to_sign_up_form(api, tenant.tenant_id, PHONE)
    for old_value in ("Vera", "Masha", "espresso", "vera@example.com", before["cards"][0]):
        assert old_value not in form.text
    assert value_of(form.text, "child_1_name") == "" and 'name="preferences" type="text" value=""' in form.text
    done = send_sign_up(browser, tenant.tenant_id, form.text, first_name="Vera")
    assert done.status_code == 303, errors_of(done.text)
    new = customer_of(api, tenant, PHONE).data
    assert new["customer_id"] != before["customer_id"] and new["cards"] != before["cards"]
    assert (new["children"], new["preferences"], new["email"]) == (None, None, None)
    gone = api.get(f"/v1/customers/{before['customer_id']}", tenant.admin).data
    assert gone["status"] == "erased" and (gone["children"], gone["preferences"], gone["phone"]) == (None, None, None)
    profile = browser.get(f"{site(tenant.tenant_id)}/profile")
    assert "Masha" not in profile.text and "espresso" not in profile.text
