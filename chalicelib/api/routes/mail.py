"""Mail settings: the sender, SMS gateway, quiet hours and weekly cap every mailing obeys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.mail import MailSettings

if TYPE_CHECKING:
    from chalicelib.services.marketing import mail_settings
else:
    mail_settings = lazy_module("chalicelib.services.marketing.mail_settings")

router = Router("Mail")
ADMIN = {Role.TENANT_ADMIN}


@router.route("GET", "/v1/mail-settings", roles=ADMIN, response=MailSettings,
              summary="The tenant's mail settings (defaults until saved).")
def get_settings(req: Request) -> MailSettings:
    return mail_settings.get(tenant_id_of(req.caller))


@router.route("PUT", "/v1/mail-settings", roles=ADMIN, body=MailSettings, response=MailSettings, errors=(422,),
              summary="Replace the mail settings; a new sender address is submitted to SES for verification.")
def put_settings(req: Request) -> MailSettings:
    return mail_settings.put(tenant_id_of(req.caller), req.body)
