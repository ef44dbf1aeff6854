"""Message templates: saved only when valid, rendered per recipient for the mail worker and for previews.

A template is validated when saved (syntax, unknown variables, constructs the
sandbox refuses), and rendered for a sample recipient within the run-time
limits (a number or string bomb, a loop past its budget, a message past its
size is refused then, not at send). It is re-checked when rendered, so a
stored template that slipped past an older rule still fails safely, as that
one message's RenderError.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from chalicelib import clock
from chalicelib.domain import templating
from chalicelib.domain.templating import Channel, Rendered, RenderError
from chalicelib.errors import ApiError, ErrorDetail, conflict
from chalicelib.schemas.templates import (
    DraftPreviewIn,
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
    TemplateUpdate,
)
from chalicelib.services.customers import customers
from chalicelib.services.marketing import mail_context
from chalicelib.storage import audit, transactions
from chalicelib.storage import templates as store
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.template import TemplateDoc
from chalicelib.storage.transactions import Tx


def not_found(template_id: str) -> ApiError:
    return ApiError(404, "template_not_found", f"Template {template_id!r} does not exist.",
                    [ErrorDetail("template_id", "not found")])


def _check(channel: Channel, subject: str | None, body: str) -> None:
    problems = templating.validate(channel, subject, body)
    if problems:
        raise ApiError(422, "invalid_template", "The template cannot be saved: " + problems[0].issue,
                       [ErrorDetail(p.field, p.issue) for p in problems])


def _check_saveable(channel: Channel, subject: str | None, body: str) -> None:
    """Valid, and renders within the run-time limits for a sample recipient: a save never stores a template
    that would fail for every recipient (a preview still renders an unsaved one for a real customer)."""
    _check(channel, subject, body)
    problems = templating.trial_render(channel, subject, body)
    if problems:
        raise ApiError(422, "render_failed", "The template cannot be saved: it does not render within its limits: "
                       + problems[0].issue, [ErrorDetail(p.field, p.issue) for p in problems])


def _read(tenant_id: str, template_id: str) -> Versioned[TemplateDoc]:
    found = store.get(tenant_id, template_id)
    if found is None:
        raise not_found(template_id)
    return found


def _channel(doc: TemplateDoc) -> Channel:
    """The stored channel as the renderer takes it: a save only ever stores a `Channel` value."""
    return cast(Channel, doc.channel)


def _out(read: Versioned[TemplateDoc]) -> TemplateOut:
    doc = read.doc
    used = set(templating.variables_used(doc.body))
    if doc.subject:
        used |= set(templating.variables_used(doc.subject))
    return TemplateOut(id=doc.template_id, name=doc.name, channel=_channel(doc), subject=doc.subject,
                       body=doc.body, variables=sorted(used), version=read.version,
                       created_at=doc.created_at, updated_at=doc.updated_at)


def _doc(body: TemplateIn | TemplateUpdate, created_at: str) -> TemplateDoc:
    doc = TemplateDoc(name=body.name, channel=body.channel, body=body.body, created_at=created_at)
    if body.subject is not None:
        doc.subject = body.subject
    return doc


def _written(doc: TemplateDoc, template_id: str, version: int, at: datetime) -> Versioned[TemplateDoc]:
    """What a write just stored, as a read would give it back."""
    doc.template_id, doc.updated_at = template_id, at
    return Versioned(doc, version)


def _audit(tx: Tx, tenant_id: str, action: str, template_id: str, actor: str, at: datetime) -> None:
    audit.add(tx, audit.entry(tenant_id, action=action, actor=actor, at=at, target=f"template:{template_id}"))


def create(tenant_id: str, body: TemplateIn, actor: str) -> TemplateOut:
    _check_saveable(body.channel, body.subject, body.body)
    at = clock.now()
    doc = _doc(body, at.isoformat())

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
    _check_saveable(body.channel, body.subject, body.body)
    at = clock.now()
    doc = _doc(body, current.doc.created_at)

    def build(tx: Tx) -> None:
        store.replace(tx, tenant_id, template_id, doc, version, at)
        _audit(tx, tenant_id, "template.updated", template_id, actor, at)

    if not transactions.written(build):
        raise _changed(template_id)
    return _out(_written(doc, template_id, version + 1, at))


# --- rendering --------------------------------------------------------------------------

def render_for(tenant_id: str, template_id: str, channel: str, variables: dict[str, Any]) -> Rendered:
    """One message from a saved template (the mail worker's call); RenderError fails that message only."""
    found = store.get(tenant_id, template_id)
    if found is None:
        raise RenderError(f"template {template_id!r} does not exist")
    doc = found.doc
    if doc.channel != channel:
        raise RenderError(f"template {template_id!r} is for {doc.channel}, not {channel}")
    return templating.render(_channel(doc), doc.subject, doc.body, variables)


def _preview(tenant_id: str, channel: Channel, subject: str | None, body: str, spec: PreviewIn) -> PreviewOut:
    found = customers.find(tenant_id, spec.customer_id)
    values = mail_context.variables(tenant_id, found.scope, found.customer_id, coupon_code=spec.coupon_code,
                                    extra=dict(spec.extra), channel=channel)
    try:
        rendered = templating.render(channel, subject, body, values)
    except RenderError as err:
        raise ApiError(422, "render_failed", f"The template could not be rendered for this customer: {err.message}",
                       [ErrorDetail("body", err.message)]) from None
    return PreviewOut(subject=rendered.subject, body=rendered.body, sms_segments=rendered.sms_segments,
                      encoding=rendered.encoding, characters=len(rendered.body))


def preview(tenant_id: str, template_id: str, spec: PreviewIn) -> PreviewOut:
    """A saved template rendered for one of the tenant's customers; nothing is sent or written."""
    doc = _read(tenant_id, template_id).doc
    return _preview(tenant_id, _channel(doc), doc.subject, doc.body, spec)


def preview_draft(tenant_id: str, spec: DraftPreviewIn) -> PreviewOut:
    """An unsaved template, validated as a save would be, rendered for one customer."""
    _check(spec.channel, spec.subject, spec.body)
    return _preview(tenant_id, spec.channel, spec.subject, spec.body, spec)
