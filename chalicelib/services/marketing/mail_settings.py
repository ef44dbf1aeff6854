"""A tenant's mail settings: sender address, SMS sender id and gateway, quiet hours, weekly cap."""

from __future__ import annotations

from chalicelib import clock
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.mail import MailSettings
from chalicelib.services.marketing import channels
from chalicelib.storage import deliveries
from chalicelib.storage.documents.delivery import MailSettingsDoc


def get(tenant_id: str) -> MailSettings:
    """The saved settings, or the defaults (quiet 21:00-09:00, 3 a week, SNS, no sender yet)."""
    doc = deliveries.get_settings(tenant_id)
    return MailSettings.model_validate(doc.dump()) if doc else MailSettings()


def put(tenant_id: str, spec: MailSettings) -> MailSettings:
    """Save the settings; a new sender address is first submitted to SES for verification."""
    if spec.sms_provider not in channels.SMS_PROVIDERS:
        raise ApiError(422, "unknown_sms_provider", f"No SMS gateway named {spec.sms_provider}.",
                       [ErrorDetail("sms_provider", f"one of {', '.join(sorted(channels.SMS_PROVIDERS))}")])
    if spec.email_from and spec.email_from != get(tenant_id).email_from:
        try:
            channels.verify_email_identity(spec.email_from)
        except (channels.PermanentSendError, channels.TransientSendError) as err:
            raise ApiError(422, "email_identity_rejected", "SES did not accept the sender address.",
                           [ErrorDetail("email_from", str(err))]) from None
    deliveries.put_settings(tenant_id, MailSettingsDoc.load(spec.model_dump(mode="json")), clock.now())
    return spec
