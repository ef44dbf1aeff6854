"""Message templates: the tenant's SMS and e-mail templates, an editor with a live SMS counter, an e-mail block
builder, a live preview on a sample or a chosen customer at desktop and phone widths, and a test send to oneself.

The same services and models as the API's `/v1/templates` routes: the form is parsed into `TemplateIn` /
`TemplateUpdate` (a preview into `DraftPreviewIn`, a test send into `DraftTestSendIn`), so validation, the
sandbox's rules, limits and audit are the API's; a sandbox error (with its line) is shown at the input it names.
Every page acts in the signed-in person's own tenant: another tenant's template id is the API's 404.

Without JavaScript everything is a form post that renders the editor again with everything typed kept: the
blocks are indexed inputs (`blocks-0-type`, `blocks-0-text`, ...) and each block's buttons post
`action=up:2`, `down:2`, `remove:2`, `add` (with the chosen type). With htmx the SMS counter and the preview
follow the typing. The preview of an e-mail is its rendered HTML in an `<iframe sandbox>` whose address is a
page of ours (`/console/templates/frame/{view}`) answering the HTML alone under its own strict CSP; the draft
travels in that address, compressed and signed with the session's form token (nobody else can make the
console render something for this person).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import zlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from chalice.app import Response
from pydantic import ValidationError

from chalicelib.console.pages import PageRequest, PageRouter, csp, framed, gettext, redirect
from chalicelib.domain import email_html, templating
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError, not_found
from chalicelib.lazy import lazy_module
from chalicelib.schemas import templates as schema
from chalicelib.schemas.tenancy import Tenant
from chalicelib.settings import settings

if TYPE_CHECKING:
    from chalicelib.services.customers import customers
    from chalicelib.services.marketing import assets, templates
    from chalicelib.services.tenancy import tenancy
else:
    customers = lazy_module("chalicelib.services.customers.customers")
    assets = lazy_module("chalicelib.services.marketing.assets")
    templates = lazy_module("chalicelib.services.marketing.templates")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("templates")
ADMIN = frozenset({Role.TENANT_ADMIN})
"""As the API's /v1/templates routes."""
router.section("/console/templates", "Templates", roles=ADMIN, order=46)
PAGE = 50
CHANNELS = ("sms", "email")
FIELDS = ("id", "name", "channel", "subject", "body", "preview_phone", "preview_card")
BLOCK_TYPES = ("header", "text", "image", "button", "balance", "coupon", "divider", "footer")
BLOCK_FIELDS: dict[str, tuple[str, ...]] = {
    "header": ("text", "asset_id"), "text": ("text",), "image": ("asset_id", "alt", "url"),
    "button": ("label", "url"), "balance": ("text",), "coupon": ("text",), "divider": (), "footer": ("text",),
}
"""The inputs each kind of block has (the model's fields of `EmailBlock`)."""
ALL_BLOCK_FIELDS = ("text", "asset_id", "alt", "url", "label")
MAX_BLOCKS = 30
VIEWS = ("desktop", "phone")
MAX_FRAME_URL = 7000
"""A draft longer than this (compressed, in the frame's address) is previewed once saved."""
VARIABLES = (
    ("first_name", "The customer's first name."), ("last_name", "The customer's last name."),
    ("balance", "Points on the customer's card."), ("tier", "The customer's tier."),
    ("expiring_points", "Points that expire soonest."), ("expiring_date", "When those points expire."),
    ("coupon_code", "The coupon code a campaign gives."), ("unsubscribe_url", "The signed unsubscribe link."),
    ("tenant_name", "Your business's name."), ("extra", "Values a campaign passes: {{ extra.order_id }}."),
)
"""What a template may use (domain.templating.ALLOWED_VARIABLES), with its meaning for the editor."""
LINE = re.compile(r"\bline (\d+)")


# --- pages ------------------------------------------------------------------------------------------------------

@router.page("GET", "/console/templates", roles=ADMIN)
def template_list(req: PageRequest) -> Response:
    tenant = _tenant(req)
    cursor = req.query.get("cursor")
    items, next_cursor = templates.list_templates(tenant.tenant_id, PAGE, cursor[:2048] if cursor else None)
    return req.render("templates/list.html", tenant=tenant, items=items, cursor=next_cursor)


@router.page("GET", "/console/templates/new", roles=ADMIN)
def new_template(req: PageRequest) -> Response:
    channel = "email" if req.query.get("channel") == "email" else "sms"
    blocks = _starter_blocks() if channel == "email" else []
    return _editor(req, _tenant(req), None, {"channel": channel}, blocks, {})


@router.page("POST", "/console/templates", roles=ADMIN)
def create_template(req: PageRequest) -> Response:
    return _act(req, _tenant(req), None)


@router.page("GET", "/console/templates/{template_id}", roles=ADMIN)
def template_page(req: PageRequest) -> Response:
    tenant = _tenant(req)
    current = templates.get(tenant.tenant_id, req.path["template_id"])
    notice = {"saved": gettext(req.locale, "The template is saved.")}.get(req.query.get("done", ""))
    values, blocks = _values_of(current)
    preview, problems = _preview(req, tenant, values, blocks, saved=current.id)  # opens with its preview
    return _editor(req, tenant, current, values, blocks, {}, notice=notice, preview=None if problems else preview)


@router.page("POST", "/console/templates/{template_id}", roles=ADMIN)
def save_template(req: PageRequest) -> Response:
    tenant = _tenant(req)
    current = templates.get(tenant.tenant_id, req.path["template_id"])  # another tenant's id: 404 first
    return _act(req, tenant, current)


@router.page("POST", "/console/templates/count", roles=ADMIN)
def count(req: PageRequest) -> Response:
    """The live SMS counter: only the counter's content (htmx swaps it into the editor's live region)."""
    tenant = _tenant(req)
    return req.render("templates/_counter.html", counter=_counter(tenant, req.form.get("body", "")[:20_000]))


@router.page("POST", "/console/templates/preview", roles=ADMIN)
def live_preview(req: PageRequest) -> Response:
    """The live preview: only the preview box (htmx swaps it in when the editor changes)."""
    tenant = _tenant(req)
    values, blocks = _typed(req.form)
    preview, errors = _preview(req, tenant, values, blocks)
    return req.render("templates/_preview.html", preview=preview, errors=errors, values=values)


@router.page("GET", "/console/templates/frame/{view}", roles=ADMIN)
def frame(req: PageRequest) -> Response:
    """The rendered HTML of a draft, alone, for the editor's `<iframe sandbox>` (under pages.FRAMED_CSP)."""
    tenant = _tenant(req)
    draft = _unsealed(req, req.query.get("d", ""), req.query.get("s", ""))
    if req.path["view"] not in VIEWS or draft is None:
        raise not_found("Preview")
    try:
        spec = schema.DraftPreviewIn.model_validate(draft)
        html = templates.preview_draft(tenant.tenant_id, spec).html
    except (ValidationError, ApiError):
        html = None
    if not html:
        return framed(_frame_message(req, gettext(req.locale, "Correct the marked fields to see the preview.")))
    return framed(html)


@router.page("GET", "/console/templates/{template_id}/frame/{view}", roles=ADMIN)
def saved_frame(req: PageRequest) -> Response:
    """The rendered HTML of a saved template, for an e-mail too long to travel in the draft frame's address."""
    tenant = _tenant(req)
    template_id = req.path["template_id"]
    if req.path["view"] not in VIEWS:
        raise not_found("Preview")
    customer_id = req.query.get("customer", "").strip()[:80] or None
    try:
        html = templates.preview(tenant.tenant_id, template_id, schema.PreviewIn(customer_id=customer_id)).html
    except ValidationError:
        html = None
    except ApiError as err:
        if err.code == "template_not_found":
            raise
        html = None
    if not html:
        return framed(_frame_message(req, gettext(req.locale, "Correct the marked fields to see the preview.")))
    return framed(html)


# --- the editor's actions ---------------------------------------------------------------------------------------

def _act(req: PageRequest, tenant: Tenant, current: schema.TemplateOut | None) -> Response:
    """One post of the editor: save, preview, count, test send, switch the channel, or change the blocks."""
    values, blocks = _typed(req.form)
    action = req.form.get("action", "save")
    if action.startswith(("add", "up:", "down:", "remove:")):
        blocks, focus = _arranged(blocks, action, req.form.get("new_block", ""))
        return _editor(req, tenant, current, values, blocks, {}, focus=focus)
    if action == "channel":
        if values["channel"] == "email" and not blocks:
            blocks = _starter_blocks()
        return _editor(req, tenant, current, values, blocks, {})
    if action == "count":
        return _editor(req, tenant, current, values, blocks, {})
    if action == "preview":
        preview, errors = _preview(req, tenant, values, blocks)
        return _editor(req, tenant, current, values, blocks, errors, preview=preview,
                       status=422 if errors else 200)
    if action == "test":
        return _test_send(req, tenant, current, values, blocks)
    return _save(req, tenant, current, values, blocks)


def _save(req: PageRequest, tenant: Tenant, current: schema.TemplateOut | None, values: dict[str, str],
          blocks: list[dict[str, str]]) -> Response:
    data = _model_data(values, blocks)
    if current is None:
        data["id"] = values["id"].strip()
        parsed, errors = _parse(schema.TemplateIn, data)
    else:
        parsed, errors = _parse(schema.TemplateUpdate, {**data, "version": req.form.get("version") or None})
    if parsed is None:
        return _editor(req, tenant, current, values, blocks, errors, status=400)
    try:
        if current is None:
            saved = templates.create(tenant.tenant_id, parsed, req.actor)
        else:
            saved = templates.update(tenant.tenant_id, current.id, parsed, req.actor)
    except ApiError as err:
        return _editor(req, tenant, current, values, blocks, _api_errors(req, err), status=err.status)
    return redirect(f"/console/templates/{quote(saved.id, safe='')}?done=saved")


def _test_send(req: PageRequest, tenant: Tenant, current: schema.TemplateOut | None, values: dict[str, str],
               blocks: list[dict[str, str]]) -> Response:
    """The draft as typed, rendered for the sample (or the chosen customer) and sent to the person's own e-mail."""
    if values["channel"] != "email":
        return _editor(req, tenant, current, values, blocks,
                       {"form": gettext(req.locale, "A test send is for e-mail templates.")}, status=422)
    customer_id, errors = _customer(req, tenant, values)
    if errors:
        return _editor(req, tenant, current, values, blocks, errors, status=404)
    data = {**_model_data(values, blocks), "customer_id": customer_id}
    data.pop("name", None)
    parsed, errors = _parse(schema.DraftTestSendIn, data)
    if parsed is None:
        return _editor(req, tenant, current, values, blocks, errors, status=400)
    try:
        sent = templates.test_send(tenant.tenant_id, req.actor, req.person.email or "", parsed)
    except ApiError as err:
        return _editor(req, tenant, current, values, blocks, _api_errors(req, err), status=err.status)
    notice = gettext(req.locale, "A test was sent to %(to)s.") % {"to": sent.to}
    if settings.stage in ("local", "test"):
        notice += " " + gettext(req.locale, "On this local stack it is in the local outbox.")
    return _editor(req, tenant, current, values, blocks, {}, notice=notice)


# --- rendering the editor ---------------------------------------------------------------------------------------

def _editor(req: PageRequest, tenant: Tenant, current: schema.TemplateOut | None, values: dict[str, str],
            blocks: list[dict[str, str]], errors: dict[str, str], *, preview: dict[str, Any] | None = None,
            status: int | None = None, notice: str | None = None, focus: int | None = None) -> Response:
    values = {**{name: "" for name in FIELDS}, **values}
    if values["channel"] not in CHANNELS:
        values["channel"] = "sms"
    if status is None:
        status = 400 if errors else 200
    library = assets.list_assets(tenant.tenant_id) if values["channel"] == "email" else []
    req.extra_headers["Content-Security-Policy"] = csp(frame_src="'self'")
    return req.render("templates/editor.html", status, tenant=tenant, current=current, values=values,
                      blocks=blocks, errors=errors, preview=preview, notice_text=notice, focus=focus,
                      counter=_counter(tenant, values["body"]) if values["channel"] == "sms" else None,
                      variables=VARIABLES, block_types=BLOCK_TYPES, block_fields=BLOCK_FIELDS,
                      library=library, lines=_lines(values, blocks, errors),
                      max_blocks=MAX_BLOCKS)


def _lines(values: Mapping[str, str], blocks: list[dict[str, str]], errors: Mapping[str, str]) -> dict[str, str]:
    """For a sandbox error that names a line, that line of what was typed (shown under the error)."""
    out: dict[str, str] = {}
    for name, message in errors.items():
        found = LINE.search(message)
        if not found:
            continue
        if name.startswith("blocks-"):
            _, index, field = name.split("-", 2)
            source = blocks[int(index)].get(field, "") if int(index) < len(blocks) else ""
        else:
            source = values.get(name, "")
        lines = source.splitlines()
        number = int(found.group(1))
        if 1 <= number <= len(lines):
            out[name] = lines[number - 1][:300]
    return out


def _frame_message(req: PageRequest, message: str) -> str:
    from html import escape

    return (f'<!doctype html><html lang="{req.locale}"><head><meta charset="utf-8"><title>'
            f'{escape(gettext(req.locale, "Preview"))}</title></head><body><p>{escape(message)}</p></body></html>')


# --- the form ---------------------------------------------------------------------------------------------------

def _typed(form: Mapping[str, str]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """What the person typed: the template's fields, and the blocks in their order (kept as typed)."""
    values = {name: form.get(name, "")[:20_000] for name in FIELDS}
    blocks: list[dict[str, str]] = []
    for index in range(MAX_BLOCKS + 1):
        kind = form.get(f"blocks-{index}-type")
        if kind is None:
            break
        if kind not in BLOCK_TYPES:
            continue
        blocks.append({"type": kind, **{f: form.get(f"blocks-{index}-{f}", "")[:5000] for f in ALL_BLOCK_FIELDS}})
    return values, blocks[:MAX_BLOCKS]


def _arranged(blocks: list[dict[str, str]], action: str, new_type: str) -> tuple[list[dict[str, str]], int | None]:
    """The blocks after one button of the builder: add (at the end), move up or down, remove; and where the
    block that moved or was added now is (the page puts the focus back on it)."""
    blocks = [dict(b) for b in blocks]
    if action == "add":
        if new_type in BLOCK_TYPES and len(blocks) < MAX_BLOCKS:
            blocks.append({"type": new_type, **{f: "" for f in ALL_BLOCK_FIELDS}})
            return blocks, len(blocks) - 1
        return blocks, None
    verb, _, where = action.partition(":")
    if not where.isdigit() or int(where) >= len(blocks):
        return blocks, None
    index = int(where)
    if verb == "remove":
        del blocks[index]
        return blocks, min(index, len(blocks) - 1) if blocks else None
    other = index - 1 if verb == "up" else index + 1
    if 0 <= other < len(blocks):
        blocks[index], blocks[other] = blocks[other], blocks[index]
        return blocks, other
    return blocks, index


def _starter_blocks() -> list[dict[str, str]]:
    """A new e-mail starts with a header, a text and the footer (with its unsubscribe link)."""
    empty = {f: "" for f in ALL_BLOCK_FIELDS}
    return [{"type": "header", **empty, "text": "{{ tenant_name }}"}, {"type": "text", **empty},
            {"type": "footer", **empty}]


def _block_data(block: Mapping[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {"type": block["type"]}
    for name in BLOCK_FIELDS.get(block["type"], ()):
        if block.get(name, "").strip():
            data[name] = block[name] if name == "text" else block[name].strip()
    return data


def _model_data(values: Mapping[str, str], blocks: list[dict[str, str]]) -> dict[str, Any]:
    """The template as the API's models take it (empty subject for SMS and empty body with blocks are absent)."""
    data: dict[str, Any] = {"name": values.get("name", "").strip(), "channel": values.get("channel", "")}
    if values.get("subject", "").strip():
        data["subject"] = values["subject"].strip()
    elif values.get("channel") == "email":
        data["subject"] = None
    with_blocks = values.get("channel") == "email" and blocks
    if values.get("body", "").strip() or not with_blocks:
        data["body"] = values.get("body", "")
    if with_blocks:
        data["blocks"] = [_block_data(b) for b in blocks]
    return data


def _parse(model: Any, data: Mapping[str, Any]) -> tuple[Any, dict[str, str]]:
    try:
        return model.model_validate(dict(data), strict=False), {}
    except ValidationError as err:
        errors: dict[str, str] = {}
        for item in err.errors(include_url=False):
            errors.setdefault(_input_of([str(p) for p in item["loc"]]), str(item["msg"]))
        return None, errors


def _input_of(loc: list[str]) -> str:
    """The form's input for a model's location (`blocks`, 2, `text` -> `blocks-2-text`)."""
    if not loc:
        return "form"
    if loc[0] == "blocks" and len(loc) >= 2 and loc[1].isdigit():
        field = loc[2] if len(loc) >= 3 and loc[2] in ALL_BLOCK_FIELDS else "type"
        return f"blocks-{loc[1]}-{field}"
    if loc[0] in ("id", "name", "channel", "subject", "body", "blocks"):
        return loc[0]
    if loc[0] == "customer_id":
        return "preview_phone"
    return "form"


def _field_of(detail: str) -> str:
    """An ApiError detail's field (`blocks.2.text`, `blocks[2].text`, `body`) as the form's input."""
    return _input_of([p for p in re.split(r"[.\[\]]+", detail) if p])


def _api_errors(req: PageRequest, err: ApiError) -> dict[str, str]:
    """A refusal of the service at the input its detail names (every such input), else above the form."""
    errors: dict[str, str] = {}
    for detail in err.details or []:
        name = _field_of(detail.field)
        if name != "form":
            errors.setdefault(name, _sandbox_text(req, detail.issue) if detail.issue else gettext(req.locale,
                                                                                                  err.message))
    if not errors or err.code in ("template_changed", "template_exists"):
        errors.setdefault("id" if err.code == "template_exists" else "form", gettext(req.locale, err.message))
    return errors


SANDBOX_SAYINGS = (
    (re.compile(r"^syntax error on line (?P<line>\d+): (?P<detail>.*)$", re.S),
     "Syntax error on line %(line)s: %(detail)s"),
    (re.compile(r"^unknown variable\(s\): (?P<names>.*?); allowed: (?P<allowed>.*)$", re.S),
     "Unknown variable(s): %(names)s; allowed: %(allowed)s"),
    (re.compile(r"^not allowed in the sandbox: (?P<what>.*)$", re.S), "Not allowed in the sandbox: %(what)s"),
)
"""The sandbox's usual problems (domain.templating) in the person's language; the details stay as said."""


def _sandbox_text(req: PageRequest, issue: str) -> str:
    """A sandbox problem as said by the service ("syntax error on line 2: ..."), in the person's language."""
    for pattern, message in SANDBOX_SAYINGS:
        found = pattern.match(issue)
        if found:
            return gettext(req.locale, message) % found.groupdict()
    return issue[:1].upper() + issue[1:]


def _values_of(current: schema.TemplateOut) -> tuple[dict[str, str], list[dict[str, str]]]:
    values = {"id": current.id, "name": current.name, "channel": current.channel, "subject": current.subject or "",
              "body": current.body}
    blocks = []
    for block in getattr(current, "blocks", None) or []:
        item = {"type": block.type, **{f: getattr(block, f, None) or "" for f in ALL_BLOCK_FIELDS}}
        blocks.append(item)
    if blocks:
        values["body"] = ""  # derived from the blocks unless the person writes their own plain text
        if current.body.strip() and current.body.strip() not in _derived_texts(current):
            values["body"] = current.body
    return values, blocks


def _derived_texts(current: schema.TemplateOut) -> set[str]:
    """The plain text the service makes from the blocks when none is written (shown as an empty field), in each
    language a tenant may have: one saved before a change of the tenant's language is still the derived one."""
    return {email_html.plain_text(current.blocks or [], lang).strip() for lang in email_html.CAPTIONS}


# --- counting and previewing ------------------------------------------------------------------------------------

def _counter(tenant: Tenant, body: str) -> dict[str, Any]:
    """Characters, segments and encoding of an SMS: of the text with the sample's values when it renders, else of
    the text as typed (domain.templating counts as the SMS gateway bills)."""
    sample = {**templating.SAMPLE_VARIABLES, "tenant_name": tenant.name}
    text, with_sample = body.strip(), False
    if body.strip() and not templating.validate("sms", None, body):
        try:
            text, with_sample = templating.render("sms", None, body, sample).body, True
        except templating.RenderError:
            pass
    segments, encoding = templating.sms_segments(text)
    return {"characters": len(text), "segments": segments, "encoding": encoding, "with_sample": with_sample,
            "over": segments > templating.MAX_SMS_SEGMENTS, "max": templating.MAX_SMS_SEGMENTS}


def _customer(req: PageRequest, tenant: Tenant, values: Mapping[str, str]) -> tuple[str | None, dict[str, str]]:
    """The customer chosen for the preview (by phone or card number, as the customers search finds them), or
    None for the sample recipient."""
    phone, card = values.get("preview_phone", "").strip()[:32], values.get("preview_card", "").strip()[:32]
    if not phone and not card:
        return None, {}
    try:
        found = customers.search(tenant.tenant_id, phone or None, None if phone else card)
    except ApiError as err:
        return None, {"preview_phone" if phone else "preview_card": gettext(req.locale, err.message)}
    return found.customer_id, {}


def _preview(req: PageRequest, tenant: Tenant, values: dict[str, str], blocks: list[dict[str, str]],
             saved: str | None = None) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The draft rendered for the sample or the chosen customer by the service of POST /v1/templates/preview:
    (what to show, errors at the inputs). `saved`: the draft is that saved template as stored, so an e-mail too
    long for the frame's address is framed by the template's id instead."""
    customer_id, errors = _customer(req, tenant, values)
    if errors:
        return None, errors
    data = {**_model_data(values, blocks), "customer_id": customer_id}
    data.pop("name", None)
    parsed, errors = _parse(schema.DraftPreviewIn, {k: v for k, v in data.items() if v is not None or k == "subject"})
    if parsed is None:
        return None, errors
    try:
        out = templates.preview_draft(tenant.tenant_id, parsed)
    except ApiError as err:
        return None, _api_errors(req, err)
    shown: dict[str, Any] = {"subject": out.subject, "body": out.body, "segments": out.sms_segments,
                             "encoding": out.encoding, "characters": out.characters, "customer": customer_id,
                             "frames": None, "too_long": False}
    if getattr(out, "html", None):
        sealed = _sealed(req, parsed.model_dump(mode="json", exclude_none=True))
        if len(sealed) > MAX_FRAME_URL and saved is not None:
            query = f"?{urlencode({'customer': customer_id})}" if customer_id else ""
            shown["frames"] = {view: f"/console/templates/{quote(saved, safe='')}/frame/{view}{query}"
                               for view in VIEWS}
        elif len(sealed) > MAX_FRAME_URL:
            shown["too_long"] = True
        else:
            shown["frames"] = {view: f"/console/templates/frame/{view}?{sealed}" for view in VIEWS}
    return shown, {}


def _signature(req: PageRequest, payload: str) -> str:
    key = (req.csrf or "").encode()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()[:32]


def _sealed(req: PageRequest, draft: dict[str, Any]) -> str:
    """The draft for the frame's address: compressed JSON, signed with this session's form token."""
    raw = json.dumps(draft, separators=(",", ":"), ensure_ascii=False).encode()
    payload = base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode().rstrip("=")
    return urlencode({"d": payload, "s": _signature(req, payload)})


def _unsealed(req: PageRequest, payload: str, signature: str) -> dict[str, Any] | None:
    if not payload or len(payload) > MAX_FRAME_URL or not hmac.compare_digest(_signature(req, payload), signature):
        return None
    try:
        raw = zlib.decompressobj().decompress(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)),
                                              200_000)
        draft = json.loads(raw)
    except (ValueError, zlib.error):
        return None
    return draft if isinstance(draft, dict) else None


# --- helpers ----------------------------------------------------------------------------------------------------

def _tenant(req: PageRequest) -> Tenant:
    tenant_id = req.person.tenant_id
    if tenant_id is None:
        raise not_found("Tenant")
    return tenancy.require_tenant(tenant_id)
