"""The member site's children and preferences fields, shared by the sign-up form and the profile page.

The customer profile holds `children` (up to 10: name, date of birth, gender) and `preferences` (up to 30 short
tags: what the member likes). A page without script cannot add rows, so the form shows a fixed number of child
rows (`rows`: the filled ones and one more, at least 3, at most 10); an empty row is skipped. The values go to the
API's own models (`CustomerCreate` / `CustomerUpdate`), and their refusals come back at the row's field.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from chalicelib.console.locales import Locale
from chalicelib.console.pages import gettext

MAX_CHILDREN = 10
MIN_ROWS = 3
CHILD_FIELDS = ("name", "birth_date", "gender")
MAX_PREFERENCES = 30
EXTRA_FIELDS = ("children", "preferences")
"""The personal fields (`PersonalField`) these helpers handle; each can be switched off by minimal-data mode."""
ISSUES = {
    "name": "Enter a name of at most 120 characters on one line.",
    "birth_date": "Enter a date such as 2018-04-30.",
    "gender": "Choose one of the options.",
    "preferences": "List up to 30 interests, separated by commas: each up to 40 letters or digits "
                   "(spaces, dots, colons and hyphens inside).",
}
"""English msgids (the catalogue translates them)."""


def child_key(row: int, name: str) -> str:
    """The form field of a child row's value (rows count from 1): `child_2_birth_date`."""
    return f"child_{row}_{name}"


def typed(form: dict[str, str], fields: list[str]) -> dict[str, str]:
    """What the form holds of the fields the tenant collects (values cut to a sane length, errors come later)."""
    out: dict[str, str] = {}
    if "children" in fields:
        for row in range(1, MAX_CHILDREN + 1):
            for name in CHILD_FIELDS:
                value = form.get(child_key(row, name), "")[:300]
                if value:
                    out[child_key(row, name)] = value
    if "preferences" in fields and form.get("preferences"):
        out["preferences"] = form["preferences"][:2000]
    return out


def shown(children: list[dict[str, Any]] | None, preferences: list[str] | None) -> dict[str, str]:
    """A stored profile's children and preferences as the form's values."""
    out: dict[str, str] = {}
    for row, child in enumerate(children or [], start=1):
        for name in CHILD_FIELDS:
            if child.get(name):
                out[child_key(row, name)] = str(child[name])
    if preferences:
        out["preferences"] = ", ".join(preferences)
    return out


def rows(values: dict[str, str]) -> int:
    """How many child rows the form shows: the last filled one and one more, at least 3, at most 10."""
    filled = [row for row in range(1, MAX_CHILDREN + 1) if any(values.get(child_key(row, n)) for n in CHILD_FIELDS)]
    return min(MAX_CHILDREN, max(MIN_ROWS, (filled[-1] + 1) if filled else 0))


def personal(values: dict[str, str], fields: list[str]) -> tuple[dict[str, Any], list[int]]:
    """The fields as the API's models take them, and the form row of each child (an empty row is skipped)."""
    out: dict[str, Any] = {}
    row_of: list[int] = []
    if "children" in fields:
        children = []
        for row in range(1, MAX_CHILDREN + 1):
            child = {n: values[child_key(row, n)].strip() for n in CHILD_FIELDS
                     if values.get(child_key(row, n), "").strip()}
            if child:
                children.append(child)
                row_of.append(row)
        if children:
            out["children"] = children
    if "preferences" in fields:
        items = [p.strip() for p in re.split(r"[,\n;]", values.get("preferences", "")) if p.strip()]
        if items:
            out["preferences"] = list(dict.fromkeys(items))
    return out, row_of


def errors(err: ValidationError, row_of: list[int], locale: Locale) -> dict[str, str]:
    """The model's refusals of children and preferences at their form fields."""
    out: dict[str, str] = {}
    for item in err.errors(include_url=False):
        loc = item["loc"]
        if not loc:
            continue
        if loc[0] == "preferences":
            out.setdefault("preferences", gettext(locale, ISSUES["preferences"]))
        elif loc[0] == "children":
            index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) and loc[1] < len(row_of) else 0
            name = str(loc[2]) if len(loc) > 2 and str(loc[2]) in CHILD_FIELDS else "name"
            row = row_of[index] if row_of else 1
            out.setdefault(child_key(row, name), gettext(locale, ISSUES[name]))
    return out
