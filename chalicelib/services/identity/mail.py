"""The e-mail staff receive: an invitation to a scope, a password-reset link. Russian and English in one message.

Plain text on purpose: a link and a few sentences, readable in any client and
in the local outbox. The texts are in mail_templates/ (first line: the
subject); the sender is the platform's (STAFF_MAIL_FROM), never a tenant's.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from chalicelib.services.marketing import channels
from chalicelib.settings import settings

ROLE_NAMES = {
    "platform": ("оператор платформы", "platform operator"),
    "agency": ("сотрудник агентства", "agency staff"),
    "tenant_admin": ("администратор", "administrator"),
    "support": ("оператор поддержки", "support operator"),
}
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "mail_templates"), autoescape=False,  # noqa: S701
                         undefined=StrictUndefined, keep_trailing_newline=True)
"""Plain-text mail: nothing here is HTML, and every value is ours or checked (e-mail, scope name, link)."""


def link(path: str, token: str) -> str:
    return f"{settings.console_base_url}{path}?token={token}"


def send_invitation(to: str, scope_name: str, role: str, token: str, expires_at: datetime, invited_by: str) -> str:
    role_ru, role_en = ROLE_NAMES.get(role, (role, role))
    return _send(to, "invitation.txt", scope_name=scope_name, role_ru=role_ru, role_en=role_en, invited_by=invited_by,
                 url=link("/console/invitation", token), until=_until(expires_at))


def send_reset(to: str, token: str, expires_at: datetime) -> str:
    return _send(to, "reset.txt", url=link("/console/reset-password", token), until=_until(expires_at))


def _until(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _send(to: str, template: str, **values: str) -> str:
    subject, _, body = _TEMPLATES.get_template(template).render(**values).partition("\n")
    return channels.EMAIL_PROVIDER.send_email(settings.staff_mail_from, to, subject.strip(), body.lstrip("\n"))
