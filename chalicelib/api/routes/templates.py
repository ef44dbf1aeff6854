"""Message templates (SMS and e-mail, Jinja2 in a sandbox), their previews and test sends (tenant admins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page
from chalicelib.schemas.templates import (
    DraftPreviewIn,
    DraftTestSendIn,
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateListQuery,
    TemplateOut,
    TemplateUpdate,
    TestSendIn,
    TestSendOut,
)

if TYPE_CHECKING:
    from chalicelib.services.marketing import templates
else:
    templates = lazy_module("chalicelib.services.marketing.templates")

router = Router("Templates")
ADMIN = {Role.TENANT_ADMIN}


@router.route("POST", "/v1/templates", roles=ADMIN, body=TemplateIn, response=TemplateOut, status=201,
              errors=(400, 409, 422),
              summary="Save a template; 422 `invalid_template` names the field and the problem (syntax error and "
                      "its line, unknown variables, constructs the sandbox refuses).")
def create_template(req: Request) -> TemplateOut:
    return templates.create(tenant_id_of(req.caller), req.body, req.actor)


@router.route("GET", "/v1/templates", roles=ADMIN, query=TemplateListQuery, response=Page[TemplateOut],
              summary="The tenant's templates, by id.")
def list_templates(req: Request) -> Page[TemplateOut]:
    items, cursor = templates.list_templates(tenant_id_of(req.caller), req.query.limit, req.query.cursor)
    return page(items, cursor)


@router.route("POST", "/v1/templates/preview", roles=ADMIN, body=DraftPreviewIn, response=PreviewOut,
              errors=(400, 404, 422),
              summary="Render an unsaved template for one customer; nothing is saved or sent.")
def preview_draft(req: Request) -> PreviewOut:
    return templates.preview_draft(tenant_id_of(req.caller), req.body)


@router.route("GET", "/v1/templates/{template_id}", roles=ADMIN, response=TemplateOut, errors=(404,),
              summary="A template.")
def get_template(req: Request) -> TemplateOut:
    return templates.get(tenant_id_of(req.caller), req.path["template_id"])


@router.route("PUT", "/v1/templates/{template_id}", roles=ADMIN, body=TemplateUpdate, response=TemplateOut,
              errors=(400, 404, 409, 422),
              summary="Replace a template's name, channel, subject and body; with `version`, only if unchanged since.")
def update_template(req: Request) -> TemplateOut:
    return templates.update(tenant_id_of(req.caller), req.path["template_id"], req.body, req.actor)


@router.route("POST", "/v1/templates/{template_id}/preview", roles=ADMIN, body=PreviewIn, response=PreviewOut,
              errors=(400, 404, 422),
              summary="Render a saved template for one customer, with SMS segments and encoding; nothing is sent.")
def preview_template(req: Request) -> PreviewOut:
    return templates.preview(tenant_id_of(req.caller), req.path["template_id"], req.body)


TEST_SEND = ("Sent to the signed-in person's own e-mail address with `[Test]` in the subject, rendered for "
             "`customer_id` or the sample recipient; e-mail only, audited, at most 20 per person per hour "
             "(429 `test_send_limited` with Retry-After). A person's session only (an API key has no address).")


@router.route("POST", "/v1/templates/test-send", roles=ADMIN, body=DraftTestSendIn, response=TestSendOut,
              errors=(400, 403, 404, 422, 429, 503), sessions_only=True,
              summary="Send an unsaved e-mail template to yourself. " + TEST_SEND)
def test_send_draft(req: Request) -> TestSendOut:
    return templates.test_send(tenant_id_of(req.caller), req.actor, req.caller.email or "", req.body)


@router.route("POST", "/v1/templates/{template_id}/test-send", roles=ADMIN, body=TestSendIn, response=TestSendOut,
              errors=(400, 403, 404, 422, 429, 503), sessions_only=True,
              summary="Send a saved e-mail template to yourself. " + TEST_SEND)
def test_send_template(req: Request) -> TestSendOut:
    return templates.test_send(tenant_id_of(req.caller), req.actor, req.caller.email or "", req.body,
                               template_id=req.path["template_id"])
