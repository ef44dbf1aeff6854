"""Template rules: allowed variables, validation, the sandbox's refusals, bounded rendering, SMS segments."""

from __future__ import annotations

import time

import pytest

from chalicelib.domain import templating
from chalicelib.domain.templating import Problem, Rendered, RenderError, check, render, sms_segments, validate

VARIABLES = {
    "first_name": "Анна", "last_name": "Петрова", "balance": 1250, "tier": "silver", "expiring_points": 25,
    "expiring_date": "2026-12-01", "coupon_code": "WELCOME-10", "unsubscribe_url": "https://x.test/u?token=abc",
    "tenant_name": "Coffee House", "extra": {"store": "Tverskaya"},
}
ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ first_name.__class__.__base__.__subclasses__() }}",
    "{{ extra['__class__'] }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ first_name|attr('__class__') }}",
    "{{ '{0.__class__}'.format(first_name) }}",
    "{% for x in range(10**9) %}{% endfor %}",
    "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% include 'other' %}",
    "{{ 'x'|center(10**9) }}",
]


def test_every_allowed_variable_renders() -> None:
    body = ("{{ first_name }} {{ last_name }}|{{ balance }}|{{ tier }}|{{ expiring_points }}|{{ expiring_date }}|"
            "{{ coupon_code }}|{{ unsubscribe_url }}|{{ tenant_name }}|{{ extra.store }}")
    assert check("body", body) == []
    out = render("email", "{{ tenant_name }}: {{ first_name }}", body, VARIABLES)
    assert out == Rendered(subject="Coffee House: Анна",
                           body="Анна Петрова|1250|silver|25|2026-12-01|WELCOME-10|https://x.test/u?token=abc|"
                                "Coffee House|Tverskaya", sms_segments=None, encoding=None)
    assert templating.ALLOWED_VARIABLES == {"first_name", "last_name", "balance", "tier", "expiring_points",
                                            "expiring_date", "coupon_code", "unsubscribe_url", "tenant_name", "extra"}


def test_missing_values_print_nothing_and_filters_loops_and_conditions_work() -> None:
    body = ("{{ first_name|upper }}{% if coupon_code %} {{ coupon_code }}{% endif %}{{ tier|default('-', true) }}"
            "{% for i in range(3) %}{{ loop.index }}{% endfor %}{{ first_name.strip() ~ '!' }}")
    out = render("sms", None, body, {"first_name": "Анна", "coupon_code": None})
    assert out.body == f"{VARIABLES['first_name'].upper()}-123{VARIABLES['first_name']}!"


def test_unknown_variable_refused_at_validation() -> None:
    problems = validate("email", "Hello {{ name }}", "{{ first_name }} {{ password }} {{ os }}")
    assert [p.field for p in problems] == ["subject", "body"]
    assert problems[0].issue.startswith("unknown variable(s): name;")
    assert problems[1].issue.startswith("unknown variable(s): os, password;")


def test_variables_set_in_the_template_are_not_unknown() -> None:
    assert check("body", "{% set greeting = 'Hi' %}{{ greeting }} {% for c in first_name %}{{ c }}{% endfor %}") == []


def test_syntax_error_is_located() -> None:
    assert check("body", "Hello\n{{ first_name }}\n{% if balance %}more") == [
        Problem("body", "syntax error on line 3: Unexpected end of template. Jinja was looking for the following "
                        "tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.")]
    assert check("subject", "{{ first_name }") == [
        Problem("subject", "syntax error on line 1: unexpected '}'")]


@pytest.mark.parametrize("payload", ESCAPES)
def test_escape_attempts_are_refused_at_save_and_never_execute(payload: str, monkeypatch: pytest.MonkeyPatch) -> None:
    problems = check("body", payload)
    assert problems and all(p.field == "body" for p in problems)
    assert any("not allowed in the sandbox" in p.issue or "unknown variable" in p.issue for p in problems)
    import os
    import subprocess

    def boom(*_: object, **__: object) -> None:
        raise AssertionError("the sandbox executed a process")

    monkeypatch.setattr(os, "popen", boom)
    monkeypatch.setattr(subprocess, "Popen", boom)
    with pytest.raises(RenderError):
        render("sms", None, payload, VARIABLES)


@pytest.mark.parametrize("payload,fragment", [
    ("{{ first_name.__class__ }}", "access to '__class__' is not allowed"),
    ("{{ extra.items() }}", "calling .items() is not allowed"),
    ("{{ first_name.ljust(100000) }}", "calling .ljust() is not allowed"),
    ("{{ center }}", "unknown variable(s): center"),
    ("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", "recursive loops are not allowed"),
])
def test_unsafe_constructs_are_named(payload: str, fragment: str) -> None:
    assert any(fragment in p.issue for p in check("body", payload)), check("body", payload)


@pytest.mark.parametrize("payload,reason", [
    ("{{ 'x' * 10**9 }}", "a value longer than 20000 was built"),
    ("{{ '%999999999d' % 1 }}", "string formatting with % is not allowed"),
    ("{{ (9**9)**9**9 }}", "a number too large was built"),
    ("{% set s = 'xxxxxxxxxx' %}" + "{% set s = s ~ s %}" * 40 + "{{ s }}", "a value longer than 20000 was built"),
    ("{% set s = 'xxxxxxxxxx' %}" + "{% set s = s + s %}" * 40 + "{{ s }}", "a value longer than 20000 was built"),
    ("{% set n = 1000 %}{% for x in range(n * n) %}{% endfor %}", "range() is limited to 1000 items"),
])
def test_value_bombs_that_pass_validation_fail_safely_at_render(payload: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError) as err:
        render("email", "s", payload, VARIABLES)
    assert reason in err.value.message
    assert time.monotonic() - started < 2


def test_nested_loop_bomb_is_stopped_by_the_size_cap_quickly() -> None:
    bomb = ("{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
            "{{ first_name }} {{ balance }} {% endfor %}{% endfor %}{% endfor %}")
    assert check("body", bomb) == [], "each range is within its limit: only rendering can stop it"
    started = time.monotonic()
    with pytest.raises(RenderError) as err:
        render("email", "s", bomb, VARIABLES)
    assert time.monotonic() - started < 2
    assert err.value.message == f"the body is longer than {templating.MAX_EMAIL_BODY_BYTES} characters"


def test_silent_nested_loops_are_stopped_by_the_iteration_budget() -> None:
    bomb = "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}{% endfor %}" \
           "{% endfor %}{% endfor %}done"
    started = time.monotonic()
    with pytest.raises(RenderError) as err:
        render("sms", None, bomb, VARIABLES)
    assert time.monotonic() - started < 2
    assert err.value.message == "the body was stopped by the sandbox: loops ran more than 10000 iterations"


def test_time_budget_is_checked_between_chunks() -> None:
    with pytest.raises(RenderError) as err:
        render("sms", None, "{% for a in range(100) %}.{% endfor %}", VARIABLES, time_budget=-1)
    assert err.value.message == "the body was stopped by the sandbox: rendering took too long"


def test_sms_longer_than_ten_segments_and_empty_messages_fail() -> None:
    with pytest.raises(RenderError) as err:
        render("sms", None, "{% for a in range(700) %}я{% endfor %}", VARIABLES)
    assert err.value.message == "the SMS takes 11 segments; at most 10 are allowed"
    with pytest.raises(RenderError) as empty:
        render("sms", None, "{{ coupon_code }}", {**VARIABLES, "coupon_code": None})
    assert empty.value.message == "the rendered message is empty"


def test_undefined_extra_and_runtime_errors_fail_that_message_only() -> None:
    with pytest.raises(RenderError) as err:
        render("sms", None, "{{ extra.order }}", VARIABLES)
    assert err.value.message == "the body could not be rendered: 'dict object' has no attribute 'order'"
    with pytest.raises(RenderError) as div:
        render("sms", None, "{{ balance // 0 }}", VARIABLES)
    assert div.value.message == "the body could not be rendered: ZeroDivisionError: integer division or modulo by zero"
    assert render("sms", None, "ok {{ balance }}", VARIABLES).body == "ok 1250"


@pytest.mark.parametrize("text,expected", [
    ("a" * 160, (1, "GSM-7")), ("a" * 161, (2, "GSM-7")), ("a" * 306, (2, "GSM-7")), ("a" * 307, (3, "GSM-7")),
    ("я" * 70, (1, "UCS-2")), ("я" * 71, (2, "UCS-2")), ("я" * 134, (2, "UCS-2")), ("я" * 135, (3, "UCS-2")),
    ("€" * 80, (1, "GSM-7")), ("€" * 81, (2, "GSM-7")), ("a" * 159 + "€", (2, "GSM-7")),
    ("a" * 152 + "€" + "a" * 10, (2, "GSM-7")), ("", (0, "GSM-7")),
])
def test_sms_segments(text: str, expected: tuple[int, str]) -> None:
    assert sms_segments(text) == expected


def test_an_extension_char_is_never_split_across_segments() -> None:
    assert sms_segments("a" * 152 + "€" + "a" * 152)[0] == 3, "152 + 2 would straddle 153, so € starts segment 2"


def test_rendered_sms_counts_segments() -> None:
    out = render("sms", None, "{{ first_name }}, баллов: {{ balance }}", VARIABLES)
    assert (out.body, out.sms_segments, out.encoding) == ("Анна, баллов: 1250", 1, "UCS-2")


@pytest.mark.parametrize("payload", [
    "{% set s = 'x' * 20000 %}{{ [s] * 20000 }}",
    "{% set s = 'x' * 20000 %}{{ [s, s, s] }}",
    "{% set s = 'x' * 20000 %}{{ [s, s]|upper }}",
    "{% set s = 'x' * 20000 %}{{ [s, s] ~ '' }}",
    "{% set s = 'x' * 20000 %}{{ {'a': s, 'b': s} }}",
])
def test_containers_of_long_strings_are_never_printed(payload: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError) as err:
        render("email", "s", payload, VARIABLES)
    assert err.value.message == "the body was stopped by the sandbox: a value longer than 20000 was built"
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("payload,issue", [
    ("{% set x %}{% for a in range(1000) %}{{ first_name }}{% endfor %}{% endset %}",
     "block assignments ({% set %}...{% endset %}) are not allowed"),
    ("{% filter upper %}{{ first_name }}{% endfilter %}", "filter blocks are not allowed"),
    ("{% extends 'base' %}", "template inheritance is not allowed"),
])
def test_capturing_and_composing_constructs_are_refused(payload: str, issue: str) -> None:
    assert Problem("body", f"not allowed in the sandbox: {issue}") in check("body", payload)


@pytest.mark.parametrize("payload", [p for p in ESCAPES if "__" in p or "format" in p])
def test_the_sandbox_refuses_escapes_even_past_the_static_check(payload: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: were the save-time check fooled, the runtime sandbox still refuses."""
    monkeypatch.setattr(templating, "check", lambda field, source: [])
    templating._compiled.cache_clear()
    try:
        with pytest.raises(RenderError) as err:
            render("sms", None, payload, {**VARIABLES, "lipsum": None})
        assert "sandbox" in err.value.message or "undefined" in err.value.message or "not" in err.value.message
    finally:
        templating._compiled.cache_clear()


def test_deeply_nested_templates_are_refused_not_crashing() -> None:
    deep = "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}"
    assert check("body", deep) == [Problem("body", "the template is nested too deeply")]
    with pytest.raises(RenderError, match="nested too deeply"):
        render("sms", None, deep, VARIABLES)
