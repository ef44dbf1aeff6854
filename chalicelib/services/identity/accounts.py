"""A person's own account settings: the console's language."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.principal import Principal
from chalicelib.storage import identity as store
from chalicelib.storage.documents.identity import UserDoc

LOCALES = ("ru", "en")


def set_locale(principal: Principal, locale: str) -> None:
    """Keep the person's language for every page and device (a retry of a lost race is harmless)."""
    if principal.user_id is None or locale not in LOCALES:
        return
    found = store.get_user(principal.user_id)
    if found is None or found.doc.locale == locale:
        return
    doc = UserDoc.load(found.doc.dump())
    doc.locale = locale
    store.save_user(principal.user_id, doc, found.version, datetime.now(UTC))
