"""A program's rules as an HTML form: fields named by the model's own paths, parsed back into the API's model.

Every input is named by its path in `ProgramSpec` (`earning.rate_bps`), so
an error pydantic reports at a `loc` lands at the input of the same name.
Nested lists (category and SKU multipliers, promotions, tier levels) are
numbered rows (`earning.promotions.2.name`) with a blank row to fill and a
"remove" box per row; more blank rows come from an "add a row" button
(a form post, no JavaScript). A blank row is skipped; the rows kept are
remembered so that an error of the model's `promotions[1]` shows at the
form's row 2 if row 1 was left blank.

Text travels as text: the form is validated with the API's model in lax
mode (the API's own JSON bodies are strict), so "500" is 500 and "5,5" is the
model's "not a valid integer" at its field. Dates are typed in the tenant's
time zone and sent to the model with its offset.

The diff and the read-only view flatten a program into labelled values
(lists of objects by their id), so two versions compare field by field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel import numbers
from pydantic import BaseModel, ValidationError

from chalicelib.console import render
from chalicelib.console.locales import Locale
from chalicelib.errors import ApiError


def _(message: str) -> str:
    """Marks a label for the catalogue; the page translates it when it shows it."""
    return message


@dataclass(frozen=True)
class Control:
    """One input: its name (the model's path), label (msgid), kind and choices (value, msgid)."""

    path: str
    label: str
    kind: str = "int"
    """text, textarea, int, money, bps, choice, bool, list, ints, datetime"""
    choices: tuple[tuple[str, str], ...] = ()
    hint: str | None = None

    @property
    def last(self) -> str:
        return self.path.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Rows:
    """A nested list shown as numbered rows; `by_key`: a mapping (category -> multiplier), else a list of objects."""

    path: str
    label: str
    fields: tuple[Control, ...]
    by_key: bool = False
    blank: int = 1


@dataclass(frozen=True)
class Section:
    anchor: str
    legend: str
    controls: tuple[Control, ...]
    rows: tuple[Rows, ...] = ()
    switch: Control | None = None
    """A box that turns the whole section on (tiers, referral): off means the model's None."""

    @property
    def group(self) -> str:
        """The model's part this section edits (`earning`), or its own name when it gathers top-level fields."""
        first = self.controls[0].path
        return first.split(".")[0] if "." in first else self.anchor


KINDS = (("points", _("Points")), ("discount", _("Discount")), ("gift", _("Gift and prepaid cards")))
STATUSES = (("active", _("In use")), ("archived", _("Archived")))
ACTIVATIONS = (("immediate", _("At once")), ("first_purchase", _("At the first purchase")),
               ("registration", _("When the customer registers")))
MODES = (("percent", _("A share of the amount")), ("per_amount", _("Points per amount spent")))
ROUNDINGS = (("down", _("Down")), ("half_up", _("Half up")))
REFUND_POLICIES = (("negative_balance", _("The card owes the points")),
                   ("write_off", _("The program writes them off")))
METRICS = (("spend", _("Spend in money")), ("points", _("Points earned in total")))
DOWNGRADES = (("none", _("Never")), ("period_end", _("At the end of each period")),
              ("grace", _("After a grace period")))
BPS_HINT = _("Basis points: 500 is 5 percent, 10000 is 100 percent.")
MONEY_HINT = _("In minor units (kopecks): 10000 is 100 roubles.")
LIST_HINT = _("Separate with commas or new lines.")

MULTIPLIER = Control("multiplier_bps", _("Multiplier"), "bps",
                     hint=_("Basis points of the base rate: 20000 is double."))
SECTIONS: tuple[Section, ...] = (
    Section("general", _("Program"), (
        Control("name", _("Name"), "text"),
        Control("description", _("Description"), "textarea"),
        Control("kind", _("Kind"), "choice", KINDS),
        Control("status", _("Status"), "choice", STATUSES),
        Control("activation", _("A new card starts working"), "choice", ACTIVATIONS),
    )),
    Section("earning", _("Earning"), (
        Control("earning.mode", _("How points are earned"), "choice", MODES),
        Control("earning.rate_bps", _("Earning rate"), "bps", hint=BPS_HINT),
        Control("earning.per_amount_points", _("Points per step")),
        Control("earning.per_amount_step", _("Step of the amount spent"), "money", hint=MONEY_HINT),
        Control("earning.rounding", _("Rounding"), "choice", ROUNDINGS),
        Control("earning.min_receipt", _("Smallest receipt that earns"), "money", hint=MONEY_HINT),
        Control("earning.excluded_categories", _("Categories that earn nothing"), "list", hint=LIST_HINT),
        Control("earning.excluded_skus", _("SKUs that earn nothing"), "list", hint=LIST_HINT),
    ), rows=(
        Rows("earning.category_multipliers", _("Category multipliers"),
             (Control("key", _("Category"), "text"), MULTIPLIER), by_key=True),
        Rows("earning.sku_multipliers", _("SKU multipliers"), (Control("key", _("SKU"), "text"), MULTIPLIER),
             by_key=True),
        Rows("earning.promotions", _("Promotions"), (
            Control("id", _("Id"), "text"),
            Control("name", _("Name"), "text"),
            Control("starts_at", _("Starts at"), "datetime"),
            Control("ends_at", _("Ends at"), "datetime"),
            Control("categories", _("Categories (empty: all)"), "list"),
            Control("skus", _("SKUs (empty: all)"), "list"),
            Control("store_ids", _("Stores (empty: all)"), "list"),
            MULTIPLIER,
            Control("bonus_points", _("Bonus points per receipt")),
        )),
    )),
    Section("redemption", _("Redemption"), (
        Control("redemption.point_value", _("Value of one point"), "money", hint=MONEY_HINT),
        Control("redemption.max_share_bps", _("Largest share of a receipt paid with points"), "bps", hint=BPS_HINT),
        Control("redemption.min_balance", _("Points needed before any can be spent")),
        Control("redemption.refund_spent_policy", _("When a refund finds the points spent"), "choice",
                REFUND_POLICIES),
    )),
    Section("discount", _("Discount"), (
        Control("discount.percent_bps", _("Discount on every receipt"), "bps", hint=BPS_HINT),
    )),
    Section("pending", _("Pending and expiry"), (
        Control("pending_days", _("Days before earned points can be spent")),
        Control("expiry_days", _("Days after which points expire (0: never)")),
    )),
    Section("tiers", _("Tiers"), (
        Control("tiers.metric", _("Tier qualification"), "choice", METRICS),
        Control("tiers.window_days", _("Counted over the last days (0: lifetime)")),
        Control("tiers.downgrade", _("A card drops a tier"), "choice", DOWNGRADES),
        Control("tiers.review_days", _("Length of a tier period, days")),
        Control("tiers.grace_days", _("Grace period, days")),
    ), rows=(
        Rows("tiers.levels", _("Levels"), (
            Control("id", _("Id"), "text"),
            Control("name", _("Name"), "text"),
            Control("threshold", _("Threshold (spend in minor units or points)")),
            Control("earn_multiplier_bps", _("Earning multiplier"), "bps"),
            Control("discount_bps", _("Discount"), "bps"),
        ), blank=2),
    ), switch=Control("tiers.enabled", _("This program has tiers"), "bool")),
    Section("referral", _("Referral"), (
        Control("referral.friend_points", _("Points for the new customer")),
        Control("referral.referrer_points", _("Points for the member who invited")),
        Control("referral.min_purchase", _("Smallest qualifying purchase"), "money", hint=MONEY_HINT),
        Control("referral.max_per_referrer", _("Friends a member can be rewarded for")),
    ), switch=Control("referral.enabled", _("This program rewards referrals"), "bool")),
    Section("gift", _("Gift and prepaid cards"), (
        Control("gift.nominals", _("Amounts a card is sold for (empty: any)"), "ints", hint=MONEY_HINT),
        Control("gift.min_amount", _("Smallest amount"), "money", hint=MONEY_HINT),
        Control("gift.max_amount", _("Largest amount"), "money", hint=MONEY_HINT),
        Control("gift.max_balance", _("Most money a card may hold"), "money", hint=MONEY_HINT),
        Control("gift.reloadable", _("Cards can be topped up"), "bool"),
        Control("gift.validity_days", _("Days a card is valid (0: always)")),
    )),
    Section("cards", _("Card numbers"), (
        Control("card_numbers.prefix", _("Prefix"), "text"),
        Control("card_numbers.length", _("Length")),
    )),
    Section("where", _("Where it runs"), (
        Control("regions", _("Regions (with stores left empty too: everywhere)"), "list", hint=LIST_HINT),
    )),
)
STORES = Control("store_ids", _("Stores"), "list")
EFFECTIVE = Control("effective_at", _("In force from (empty: now)"), "datetime")
PROGRAM_ID = Control("id", _("Id"), "text",
                     hint=_("Lower-case letters, digits and hyphens; the tills use it and it cannot change."))
CONTROLS: dict[str, Control] = {c.path: c for s in SECTIONS for c in (*s.controls, *([s.switch] if s.switch else []))}
CONTROLS.update({c.path: c for c in (STORES, EFFECTIVE, PROGRAM_ID)})
ROWS: dict[str, Rows] = {r.path: r for s in SECTIONS for r in s.rows}
SWITCHES = {s.switch.path.rsplit(".", 1)[0]: s for s in SECTIONS if s.switch}
GROUP_LABELS = {s.group: s.legend for s in SECTIONS} | {"store_ids": _("Stores"), "form": _("Program")}
ROW_PATTERN = re.compile(r"^(?P<rows>[a-z_.]+)\.(?P<index>\d{1,3})\.(?P<field>[a-z_]+)$")
SPLIT = re.compile(r"[,\n]")
MAX_ROWS = 200


# --- form -> model ---------------------------------------------------------------------------------------------

@dataclass
class Parsed:
    """The model built from a form, or the errors by input name; `places` maps model list indexes to form rows."""

    model: Any = None
    errors: dict[str, str] = field(default_factory=dict)
    places: dict[str, dict[Any, int]] = field(default_factory=dict)


def parse(model: type[BaseModel], form: Mapping[str, str], timezone: str, store_ids: Iterable[str],
          with_id: bool = False) -> Parsed:
    """The form as `model` (ProgramUpdate, or ProgramSpec when `with_id`), or its errors at their inputs."""
    parsed = Parsed()
    data: dict[str, Any] = {}
    if with_id:
        data["id"] = form.get("id", "").strip()
    for section in SECTIONS:
        if section.switch and not _on(form.get(section.switch.path)):
            data[section.switch.path.rsplit(".", 1)[0]] = None
            continue
        for control in section.controls:
            _put(data, control.path, _value(control, form.get(control.path), timezone))
        for rows in section.rows:
            _put(data, rows.path, _rows(rows, form, timezone, parsed))
    data["store_ids"] = [s for s in store_ids if _on(form.get(f"store_ids.{s}"))]
    if "effective_at" in model.model_fields:
        data["effective_at"] = _value(EFFECTIVE, form.get("effective_at"), timezone) or None
    try:
        parsed.model = model.model_validate(_prune(data), strict=False)
    except ValidationError as err:
        for item in err.errors(include_url=False):
            name = place(item["loc"], parsed.places, str(item["msg"]))
            parsed.errors.setdefault(name, str(item["msg"]))
    return parsed


def api_errors(err: ApiError, places: Mapping[str, Mapping[Any, int]] | None = None) -> dict[str, str]:
    """A service's refusal at its inputs: the API's own message at each field its details name (else 'form')."""
    errors: dict[str, str] = {}
    for detail in err.details:
        name = place(tuple(_loc_part(p) for p in detail.field.split(".")), places or {}, detail.issue)
        errors.setdefault(name, err.message)
    return errors or {"form": err.message}


def place(loc: tuple[Any, ...], places: Mapping[str, Mapping[Any, int]], message: str) -> str:
    """The input (or group of inputs) a pydantic `loc` points at, with list indexes turned into form rows."""
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    out: list[str] = []
    i = 0
    while i < len(parts):
        out.append(parts[i])
        joined = ".".join(out)
        if joined in ROWS and i + 1 < len(parts):
            row = places.get(joined, {}).get(_loc_part(parts[i + 1]), 0)
            out.append(str(row))
            i += 1
            if ROWS[joined].by_key:
                out.append("key" if len(parts) > i + 1 else "multiplier_bps")
                break
        i += 1
    name = ".".join(out)
    return _nearest(name, message)


def _nearest(name: str, message: str) -> str:
    """The input `name` if it is one, else the one the message names inside that group, else the group."""
    while name:
        if is_input(name):
            return name
        candidates = _inputs_under(name)
        named = [(found.start(), control) for control in candidates
                 if (found := re.search(rf"\b{re.escape(control.rsplit('.', 1)[-1])}\b", message))]
        if named:
            return min(named)[1]  # the input the message names first ("ends_at must be after starts_at")
        if candidates or name in GROUP_LABELS or name in ROWS:
            return name
        name = name.rsplit(".", 1)[0] if "." in name else ""
    return _named_in(message)


def _named_in(message: str) -> str:
    """Where a whole-program error belongs: the input its message names (`earning.rate_bps`), or the top."""
    for path in sorted(CONTROLS, key=len, reverse=True):
        if path in message:
            return path
    for path in CONTROLS:
        if re.search(rf"\b{re.escape(path.rsplit('.', 1)[-1])}\b", message) and "." in path:
            return path
    for group, section in SWITCHES.items():
        if re.search(rf"\b{group}\b", message) and section.switch:
            return section.switch.path
    return "form"


def is_input(name: str) -> bool:
    if name in CONTROLS:
        return True
    found = ROW_PATTERN.match(name)
    return bool(found and found["rows"] in ROWS and found["field"] in {f.path for f in ROWS[found["rows"]].fields})


def _inputs_under(group: str) -> list[str]:
    found = [p for p in CONTROLS if p.startswith(group + ".")]
    row = re.match(r"^(?P<rows>[a-z_.]+)\.(?P<index>\d{1,3})$", group)
    if row and row["rows"] in ROWS:
        found += [f"{group}.{f.path}" for f in ROWS[row["rows"]].fields]
    return found


def _rows(rows: Rows, form: Mapping[str, str], timezone: str, parsed: Parsed) -> Any:
    """The filled rows of a list as the model's list (or mapping), remembering each one's form row."""
    places: dict[Any, int] = {}
    items: list[dict[str, Any]] = []
    mapping: dict[str, Any] = {}
    for index in row_numbers(rows.path, form):
        prefix = f"{rows.path}.{index}."
        raw = {f.path: form.get(prefix + f.path, "") for f in rows.fields}
        if _on(form.get(prefix + "remove")) or not any(v.strip() for v in raw.values()):
            continue
        if rows.by_key:
            key = raw["key"].strip()
            places[key] = index
            mapping[key] = _value(MULTIPLIER, raw["multiplier_bps"], timezone)
            continue
        places[len(items)] = index
        items.append({f.path: _value(f, raw[f.path], timezone) for f in rows.fields})
    parsed.places[rows.path] = places
    return mapping if rows.by_key else items


def row_numbers(path: str, form: Mapping[str, str]) -> list[int]:
    """The row numbers a form carries for a list, in order."""
    found = {int(m["index"]) for name in form if (m := ROW_PATTERN.match(name)) and m["rows"] == path}
    return sorted(found)[:MAX_ROWS]


def _value(control: Control, raw: str | None, timezone: str) -> Any:
    text = (raw or "").strip()
    kind = control.kind
    if kind == "bool":
        return _on(raw)
    if kind in ("list", "ints"):
        return [part.strip() for part in SPLIT.split(text) if part.strip()]
    if kind == "textarea":
        return (raw or "").replace("\r\n", "\n")
    if kind == "datetime":
        return _aware(text, timezone) if text else None
    if kind in ("int", "money", "bps", "choice") and not text:
        return None
    return text


def _aware(text: str, timezone: str) -> str:
    """A local date and time typed in the tenant's zone, with its offset (an offset typed is kept)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text  # the model says what is wrong with it
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.isoformat()


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


def _prune(data: Any) -> Any:
    """Leave out what was left empty, so the model's default applies (a required one is then 'missing')."""
    if isinstance(data, dict):
        return {k: _prune(v) for k, v in data.items() if v is not None or k in SWITCHES or k == "effective_at"}
    if isinstance(data, list):
        return [_prune(v) for v in data]
    return data


def _on(value: str | None) -> bool:
    return value in ("on", "true", "1", "yes")


def _loc_part(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


# --- model -> form ----------------------------------------------------------------------------------------------

def values_of(program: BaseModel, timezone: str) -> dict[str, str]:
    """A program as the form's inputs (text), each at its name."""
    data = program.model_dump(mode="json")
    values: dict[str, str] = {}
    for section in SECTIONS:
        if section.switch:
            group = section.switch.path.rsplit(".", 1)[0]
            if data.get(group) is None:
                continue
            values[section.switch.path] = "on"
        for control in section.controls:
            values[control.path] = _text(control, _get(data, control.path), timezone)
        for rows in section.rows:
            found: Any = _get(data, rows.path) or ({} if rows.by_key else [])
            items = [{"key": k, "multiplier_bps": v} for k, v in found.items()] if rows.by_key else found
            for index, item in enumerate(items):
                for f in rows.fields:
                    values[f"{rows.path}.{index}.{f.path}"] = _text(f, item.get(f.path), timezone)
    for store_id in data.get("store_ids") or []:
        values[f"store_ids.{store_id}"] = "on"
    values["id"] = str(data.get("id", ""))
    return values


def row_count(rows: Rows, values: Mapping[str, str], extra: int) -> list[tuple[int, bool]]:
    """The rows to show, (number, filled): every filled row the values have, then blank ones."""
    used = row_numbers(rows.path, values)
    filled = [i for i in used if any(values.get(f"{rows.path}.{i}.{f.path}", "").strip() for f in rows.fields)]
    start = used[-1] + 1 if used else 0
    blanks = range(start, start + rows.blank + max(0, min(extra, 20)))
    return [(i, True) for i in filled] + [(i, False) for i in blanks]


def _text(control: Control, value: Any, timezone: str) -> str:
    if value is None:
        return ""
    if control.kind == "bool":
        return "on" if value else ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if control.kind == "datetime":
        return local_input(datetime.fromisoformat(str(value)), timezone)
    return str(value)


def local_input(moment: datetime, timezone: str) -> str:
    """A moment as a datetime-local input shows it: the tenant's wall-clock time."""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M")


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


# --- diff and the read-only view --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Line:
    """One labelled value of a program: `key` is stable across versions (lists by their ids)."""

    key: str
    label: str
    """In the person's language; ids of rows as typed (the page escapes it, like every text)."""
    value: str


@dataclass(frozen=True)
class Change:
    key: str
    label: str
    old: str
    new: str


def lines(program: BaseModel, timezone: str, locale: Locale, currency: str) -> list[Line]:
    """Every rule of a program, labelled and shown as a person reads it (money, percent, local time)."""
    data = program.model_dump(mode="json")
    out: list[Line] = []
    show = _Shower(timezone, locale, currency)
    for section in SECTIONS:
        if section.switch:
            group = section.switch.path.rsplit(".", 1)[0]
            on = data.get(group) is not None
            out.append(Line(section.switch.path, show.label(section.legend), show(section.switch, on)))
            if not on:
                continue
        for control in section.controls:
            out.append(Line(control.path, show.label(section.legend, control.label),
                            show(control, _get(data, control.path))))
        for rows in section.rows:
            out.extend(_row_lines(rows, section, _get(data, rows.path), show))
    out.append(Line("store_ids", show.label(_("Where it runs"), STORES.label),
                    show(STORES, data.get("store_ids") or [])))
    return out


def diff(old: BaseModel, new: BaseModel, timezone: str, locale: Locale, currency: str) -> list[Change]:
    """What changes from `old` to `new`, field by field (a row added or removed shows against an empty side)."""
    before = {line.key: line for line in lines(old, timezone, locale, currency)}
    after = {line.key: line for line in lines(new, timezone, locale, currency)}
    keys = list(before) + [k for k in after if k not in before]
    changes = []
    for key in keys:
        a, b = before.get(key), after.get(key)
        old_value, new_value = (a.value if a else "—"), (b.value if b else "—")
        if old_value != new_value:
            changes.append(Change(key, b.label if b else a.label if a else key, old_value, new_value))
    return changes


def _row_lines(rows: Rows, section: Section, found: Any, show: _Shower) -> list[Line]:
    out = []
    if rows.by_key:
        for key, value in (found or {}).items():
            out.append(Line(f"{rows.path}[{key}]", show.label(rows.label, ids=[key]), show(MULTIPLIER, value)))
        return out
    for item in found or []:
        for f in rows.fields:
            if f.path != "id":
                out.append(Line(f"{rows.path}[{item['id']}].{f.path}", show.label(rows.label, f.label,
                                                                                  ids=[item["id"]]),
                                show(f, item.get(f.path))))
    return out


class _Shower:
    """A rule's value as text in the person's language: money, percent, local time, the choice's label."""

    def __init__(self, timezone: str, locale: Locale, currency: str) -> None:
        self.timezone, self.locale, self.currency = timezone, locale, currency

    def label(self, *msgids: str, ids: Iterable[str] = ()) -> str:
        """Labels translated, a row's id (as typed, never looked up in the catalogue) after the first."""
        words = [render.gettext(self.locale, m) for m in msgids]
        words[1:1] = [f"«{i}»" for i in ids]
        return " · ".join(words)

    def __call__(self, control: Control, value: Any) -> str:
        if value is None or value == "":
            return "—"
        kind = control.kind
        if kind == "bool":
            return render.gettext(self.locale, "Yes") if value else render.gettext(self.locale, "No")
        if kind == "choice":
            label = dict(control.choices).get(str(value), str(value))
            return render.gettext(self.locale, label)
        if kind in ("list", "ints"):
            if kind == "ints":
                return ", ".join(render.money(int(v), self.currency, self.locale) for v in value) or "—"
            return ", ".join(str(v) for v in value) or "—"
        if kind == "money":
            return render.money(int(value), self.currency, self.locale)
        if kind == "bps":
            return str(numbers.format_percent(Decimal(int(value)) / 10_000, "#,##0.##%", locale=self.locale))
        if kind == "datetime":
            return render.when(datetime.fromisoformat(str(value)), self.timezone, self.locale)
        if kind == "int":
            return render.number(int(value), self.locale)
        return str(value)
