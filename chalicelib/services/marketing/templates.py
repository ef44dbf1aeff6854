"""Message templates: saved only when valid, rendered per recipient for the mail worker and for previews.

A template is validated when saved (syntax, unknown variables, constructs the
sandbox refuses), and rendered for a sample recipient within the run-time
limits (a number or string bomb, a loop past its budget, a message past its
size is refused then, not at send). It is re-checked when rendered, so a
stored template that slipped past an older rule still fails safely, as that
one message's RenderError.

An e-mail always has two parts: the plain body, and HTML (domain.email_html)
made from its blocks, or from the body in the brand frame when it has none.
With blocks and no body, the body is derived from the blocks when saved.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from chalicelib import clock
from chalicelib.domain import email_html, templating
from chalicelib.domain.rate_limits import fixed_window
from chalicelib.domain.templating import Channel, OverLimit, Problem, Rendered, RenderError
from chalicelib.errors import ApiError, ErrorDetail, conflict
from chalicelib.schemas.templates import (
    DraftPreviewIn,
    DraftTestSendIn,
    EmailBlock,
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
    TemplateUpdate,
    TestSendIn,
    TestSendOut,
)
from chalicelib.services.customers import customers
from chalicelib.services.marketing import assets, channels, mail_context, mail_settings
from chalicelib.services.program import catalog
from chalicelib.settings import settings
from chalicelib.storage import audit, transactions
from chalicelib.storage import templates as store
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.template import TemplateDoc
from chalicelib.storage.transactions import Tx


def not_found(template_id: str) -> ApiError:
    return ApiError(404, "template_not_found", f"Template {template_id!r} does not exist.",
                    [ErrorDetail("template_id", "not found")])


TEST_SENDS_PER_HOUR = 20
"""Test sends per person per hour: enough to iterate on a design, too few to mail anyone in bulk."""
TEST_WINDOW_SECONDS = 3600
_FIELD = re.compile(r"^(blocks\.\d+\.[a-z_]+): ")


def _invalid(problems: list[Problem]) -> ApiError:
    return ApiError(422, "invalid_template", "The template cannot be saved: "
                    + (f"{problems[0].field}: " if problems[0].field.startswith("blocks.") else "")
                    + problems[0].issue, [ErrorDetail(p.field, p.issue) for p in problems])


def language(tenant_id: str) -> str:
    """The language of the captions the HTML frame adds (balance, coupon, unsubscribe, the logo's alt text) and of
    its `<html lang>`: the tenant's `language` setting ("ru" for a tenant not found)."""
    tenant = catalog.tenant(tenant_id)
    return tenant.language if tenant is not None else "ru"


def _body_of(tenant_id: str, body: str | None, blocks: Sequence[EmailBlock] | None) -> str:
    """The plain-text body: as written, or derived from the blocks when left out (schemas require one of them),
    its captions in the tenant's language."""
    if body is not None and body.strip():
        return body
    return email_html.plain_text(blocks or [], language(tenant_id))


def _derived(body: str | None) -> bool:
    return body is None or not body.strip()


def _check(channel: Channel, subject: str | None, body: str, blocks: Sequence[EmailBlock] | None = None,
           derived: bool = False) -> None:
    """Every problem, by field. A body derived from the blocks repeats their problems: only the blocks' are said."""
    problems = email_html.validate(blocks) if blocks else []
    problems = [p for p in templating.validate(channel, subject, body)
                if not (derived and problems and p.field == "body")] + problems
    if problems:
        raise _invalid(problems)


def _check_assets(tenant_id: str, blocks: Sequence[EmailBlock] | None) -> None:
    """Every image a block shows is in the tenant's library (another tenant's id does not exist here)."""
    missing = [Problem(f"blocks.{i}.asset_id", f"no image {b.asset_id!r} in the library")
               for i, b in enumerate(blocks or []) if b.asset_id and not assets.exists(tenant_id, b.asset_id)]
    if missing:
        raise _invalid(missing)


def _check_saveable(tenant_id: str, channel: Channel, subject: str | None, body: str,
                    blocks: Sequence[EmailBlock] | None = None, derived: bool = False) -> None:
    """Valid, and renders within the run-time limits for a sample recipient: a save never stores a template
    that would fail for every recipient (a preview still renders an unsaved one for a real customer)."""
    _check(channel, subject, body, blocks, derived)
    _check_assets(tenant_id, blocks)
    problems = templating.trial_render_parts(email_html.parts(blocks)) if blocks else []
    problems = problems or templating.trial_render(channel, subject, body)
    if not problems and blocks:
        problems = _trial_html(blocks)
    if problems:
        raise ApiError(422, "render_failed", "The template cannot be saved: it does not render within its limits: "
                       + problems[0].issue, [ErrorDetail(p.field, p.issue) for p in problems])


def _trial_html(blocks: Sequence[EmailBlock]) -> list[Problem]:
    """The whole HTML part for the sample recipient stays within its size (what one block cannot tell)."""
    try:
        email_html.render(blocks, {**templating.SAMPLE_VARIABLES, "extra": {}}, email_html.Brand("Sample"),
                          "Sample", lambda asset_id: f"https://example.com/assets/{asset_id}")
    except OverLimit as err:
        return [Problem("blocks", err.message)]
    except RenderError:
        return []
    return []


def _read(tenant_id: str, template_id: str) -> Versioned[TemplateDoc]:
    found = store.get(tenant_id, template_id)
    if found is None:
        raise not_found(template_id)
    return found


def _channel(doc: TemplateDoc) -> Channel:
    """The stored channel as the renderer takes it: a save only ever stores a `Channel` value."""
    return cast(Channel, doc.channel)


def _blocks(doc: TemplateDoc) -> list[EmailBlock] | None:
    """The stored blocks as the schema's models (None for a template without them)."""
    return None if doc.blocks is None else [EmailBlock.model_validate(b) for b in doc.blocks]


def _out(read: Versioned[TemplateDoc]) -> TemplateOut:
    doc = read.doc
    blocks = _blocks(doc)
    sources = [doc.body, doc.subject or ""] + [p.source for p in email_html.parts(blocks or [])]
    used = {name for source in sources for name in templating.variables_used(source)}
    return TemplateOut(id=doc.template_id, name=doc.name, channel=_channel(doc), subject=doc.subject,
                       body=doc.body, blocks=blocks, variables=sorted(used), version=read.version,
                       created_at=doc.created_at, updated_at=doc.updated_at)


def _doc(tenant_id: str, body: TemplateIn | TemplateUpdate, created_at: str) -> TemplateDoc:
    doc = TemplateDoc(name=body.name, channel=body.channel, body=_body_of(tenant_id, body.body, body.blocks),
                      created_at=created_at)
    if body.subject is not None:
        doc.subject = body.subject
    if body.blocks is not None:
        doc.blocks = [b.model_dump(exclude_none=True) for b in body.blocks]
    return doc


def variable_names() -> list[str]:
    """The variables a template may use (the editor's list)."""
    return sorted(templating.ALLOWED_VARIABLES)


def _written(doc: TemplateDoc, template_id: str, version: int, at: datetime) -> Versioned[TemplateDoc]:
    """What a write just stored, as a read would give it back."""
    doc.template_id, doc.updated_at = template_id, at
    return Versioned(doc, version)


def _audit(tx: Tx, tenant_id: str, action: str, template_id: str, actor: str, at: datetime) -> None:
    audit.add(tx, audit.entry(tenant_id, action=action, actor=actor, at=at, target=f"template:{template_id}"))


def create(tenant_id: str, body: TemplateIn, actor: str) -> TemplateOut:
    _check_saveable(tenant_id, body.channel, body.subject, _body_of(tenant_id, body.body, body.blocks), body.blocks,
                    _derived(body.body))
    at = clock.now()
    doc = _doc(tenant_id, body, at.isoformat())

    def build(tx: Tx) -> None:
        store.add(tx, tenant_id, body.id, doc, at)
        _audit(tx, tenant_id, "template.created", body.id, actor, at)

    if not transactions.written(build):
        raise conflict("template_exists", f"Template {body.id!r} already exists.", "id")
    return _out(_written(doc, body.id, 1, at))


def get(tenant_id: str, template_id: str) -> TemplateOut:
    return _out(_read(tenant_id, template_id))


def list_templates(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[TemplateOut], str | None]:
    docs, next_cursor = store.list_page(tenant_id, limit, cursor)
    return [_out(d) for d in docs], next_cursor


def _changed(template_id: str) -> ApiError:
    return conflict("template_changed", f"Template {template_id!r} was changed since you read it; read it again.",
                    "version")


def update(tenant_id: str, template_id: str, body: TemplateUpdate, actor: str) -> TemplateOut:
    """Replace the template; with `version`, only if nobody changed it since that version."""
    current = _read(tenant_id, template_id)
    version = current.version
    if body.version is not None and body.version != version:
        raise _changed(template_id)
    _check_saveable(tenant_id, body.channel, body.subject, _body_of(tenant_id, body.body, body.blocks), body.blocks,
                    _derived(body.body))
    at = clock.now()
    doc = _doc(tenant_id, body, current.doc.created_at)

    def build(tx: Tx) -> None:
        store.replace(tx, tenant_id, template_id, doc, version, at)
        _audit(tx, tenant_id, "template.updated", template_id, actor, at)

    if not transactions.written(build):
        raise _changed(template_id)
    return _out(_written(doc, template_id, version + 1, at))


# --- rendering --------------------------------------------------------------------------

def _brand(values: dict[str, Any], tenant_id: str) -> email_html.Brand:
    """The tenant as the HTML frame shows it: its name, its brand colour and its logo (the member site's
    branding), or the neutral default colour and no logo when the tenant has set none."""
    name = str(values.get("tenant_name") or tenant_id)
    tenant = catalog.tenant(tenant_id)
    if tenant is None:
        return email_html.Brand(name=name)
    b = tenant.branding
    logo = assets.public_url(tenant_id, b.logo_asset_id) if b.logo_asset_id else None
    return email_html.Brand(name=name, colour=b.primary_colour, logo_url=logo)


def _compose(tenant_id: str, channel: Channel, subject: str | None, body: str, blocks: Sequence[EmailBlock] | None,
             values: dict[str, Any]) -> Rendered:
    """Subject and text body (templating), and for e-mail the HTML part: the blocks, or the body in the frame."""
    rendered = templating.render(channel, subject, body, values)
    if channel != "email":
        return rendered
    brand = _brand(values, tenant_id)
    title = rendered.subject or ""
    lang = language(tenant_id)
    if blocks:
        html = email_html.render(blocks, values, brand, title, lambda asset_id: assets.public_url(tenant_id, asset_id),
                                 lang=lang)
    else:
        html = email_html.from_text(rendered.body, values, brand, title, lang=lang)
    return dataclasses.replace(rendered, html=html)


def render_for(tenant_id: str, template_id: str, channel: str, variables: dict[str, Any]) -> Rendered:
    """One message from a saved template (the mail worker's call); RenderError fails that message only.

    An e-mail comes with its HTML part (`Rendered.html`)."""
    found = store.get(tenant_id, template_id)
    if found is None:
        raise RenderError(f"template {template_id!r} does not exist")
    doc = found.doc
    if doc.channel != channel:
        raise RenderError(f"template {template_id!r} is for {doc.channel}, not {channel}")
    return _compose(tenant_id, _channel(doc), doc.subject, doc.body, _blocks(doc), variables)


def _sample_values(tenant_id: str, spec: PreviewIn | TestSendIn, channel: Channel) -> dict[str, Any]:
    """The sample recipient, with this tenant's name and the coupon and extra values asked for."""
    tenant = catalog.tenant(tenant_id)
    return {**templating.SAMPLE_VARIABLES, "tenant_name": tenant.name if tenant else tenant_id,
            "coupon_code": spec.coupon_code or templating.SAMPLE_VARIABLES["coupon_code"],
            "unsubscribe_url": f"{settings.public_base_url}{mail_context.UNSUBSCRIBE_PATH}?token=sample",
            "extra": dict(spec.extra)}


def _values(tenant_id: str, spec: PreviewIn | TestSendIn, channel: Channel) -> dict[str, Any]:
    """The chosen customer's values (404 if not the tenant's), or the sample recipient's."""
    if spec.customer_id is None:
        return _sample_values(tenant_id, spec, channel)
    found = customers.find(tenant_id, spec.customer_id)
    return mail_context.variables(tenant_id, found.scope, found.customer_id, coupon_code=spec.coupon_code,
                                  extra=dict(spec.extra), channel=channel)


def _render_failed(err: RenderError, what: str) -> ApiError:
    """A render failure at its field: a block's (`blocks.<i>.text`) when it names one, else the body."""
    match = _FIELD.match(err.message)
    field, issue = (match.group(1), err.message[match.end():]) if match else ("body", err.message)
    return ApiError(422, "render_failed", f"The template could not be rendered {what}: {err.message}",
                    [ErrorDetail(field, issue)])


def _preview(tenant_id: str, channel: Channel, subject: str | None, body: str, blocks: Sequence[EmailBlock] | None,
             spec: PreviewIn) -> PreviewOut:
    values = _values(tenant_id, spec, channel)
    try:
        rendered = _compose(tenant_id, channel, subject, body, blocks, values)
    except RenderError as err:
        raise _render_failed(err, "for this customer") from None
    return PreviewOut(subject=rendered.subject, body=rendered.body, sms_segments=rendered.sms_segments,
                      encoding=rendered.encoding, characters=len(rendered.body), html=rendered.html)


def preview(tenant_id: str, template_id: str, spec: PreviewIn) -> PreviewOut:
    """A saved template rendered for one of the tenant's customers (or the sample); nothing is sent or written."""
    doc = _read(tenant_id, template_id).doc
    return _preview(tenant_id, _channel(doc), doc.subject, doc.body, _blocks(doc), spec)


def preview_draft(tenant_id: str, spec: DraftPreviewIn) -> PreviewOut:
    """An unsaved template, validated as a save would be, rendered for one customer (or the sample)."""
    body = _body_of(tenant_id, spec.body, spec.blocks)
    _check(spec.channel, spec.subject, body, spec.blocks, _derived(spec.body))
    _check_assets(tenant_id, spec.blocks)
    return _preview(tenant_id, spec.channel, spec.subject, body, spec.blocks, spec)


# --- test send ------------------------------------------------------------------------------

def _count_test_send(tenant_id: str, to_email: str) -> None:
    """At most TEST_SENDS_PER_HOUR per person (by address) per fixed hour; 429 with the seconds to wait."""
    window = fixed_window(clock.now(), TEST_WINDOW_SECONDS)
    person = hashlib.sha256(to_email.strip().lower().encode()).hexdigest()[:32]
    if not store.count_test_send(tenant_id, person, window.index, TEST_SENDS_PER_HOUR, window.expires_at_epoch,
                                 clock.now()):
        raise ApiError(429, "test_send_limited", f"At most {TEST_SENDS_PER_HOUR} test sends per person per hour; "
                       "retry later.", headers={"Retry-After": str(window.retry_after)})


def test_send(tenant_id: str, actor: str, to_email: str, spec: TestSendIn | DraftTestSendIn,
              template_id: str | None = None) -> TestSendOut:
    """Render a saved template (`template_id`) or a draft (`spec` a DraftTestSendIn) for a customer or the sample,
    and e-mail it to the staff person's own address, "[Test]" in the subject; audited, rate limited.

    E-mail only: an SMS test would reach a phone nobody verified here.
    """
    if not to_email or "@" not in to_email:
        raise ApiError(422, "no_email", "A test is sent to your own e-mail address, and you have none.",
                       [ErrorDetail("to", "no e-mail address")])
    if template_id is not None:
        doc = _read(tenant_id, template_id).doc
        channel, subject, body, blocks = _channel(doc), doc.subject, doc.body, _blocks(doc)
    elif isinstance(spec, DraftTestSendIn):
        channel, subject, body, blocks = "email", spec.subject, _body_of(tenant_id, spec.body, spec.blocks), spec.blocks
        _check(channel, subject, body, blocks, _derived(spec.body))
        _check_assets(tenant_id, blocks)
    else:
        raise ApiError(400, "validation_error", "Name a template or send a draft.", [ErrorDetail("template_id",
                                                                                                 "missing")])
    values = _values(tenant_id, spec, channel)
    if channel != "email":
        raise ApiError(422, "test_send_email_only", "Only e-mail templates can be test-sent; preview an SMS instead.",
                       [ErrorDetail("channel", "e-mail only")])
    config = mail_settings.get(tenant_id)
    if not config.email_from:
        raise ApiError(422, "no_sender", "Set the sender address in the mail settings first.",
                       [ErrorDetail("email_from", "not set")])
    try:
        rendered = _compose(tenant_id, channel, subject, body, blocks, values)
    except RenderError as err:
        raise _render_failed(err, "for this customer") from None
    _count_test_send(tenant_id, to_email)
    sent_subject = f"[Test] {rendered.subject or ''}".strip()
    try:
        message_id = channels.EMAIL_PROVIDER.send_email(str(config.email_from), to_email, sent_subject,
                                                        rendered.body, None, html=rendered.html)
    except channels.TransientSendError:
        raise ApiError(503, "send_unavailable", "The mail service is busy; try again shortly.",
                       headers={"Retry-After": "5"}) from None
    except channels.PermanentSendError as err:
        raise ApiError(422, "send_failed", f"The mail service refused the message: {err}",
                       [ErrorDetail("to", str(err)[:200])]) from None
    audit.put(audit.entry(tenant_id, action="template.test_sent", actor=actor, at=clock.now(),
                          target=f"template:{template_id or '(draft)'}",
                          detail={"customer_id": spec.customer_id, "message_id": message_id}))
    return TestSendOut(to=to_email, subject=sent_subject, message_id=message_id)
