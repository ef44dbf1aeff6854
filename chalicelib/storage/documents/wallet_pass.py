"""Wallet pass documents: a card's pass, a device's registration of it, and one update's delivery to one target."""

from __future__ import annotations

from chalicelib.storage.documents.common import Document


class PassDoc(Document):
    """`<tid>#pass#<serial>` / `pass`: the pass of one card of the tenant.

    `salt` is random per pass; the pass's authentication token is derived from it with the server's secret
    (services/wallet), so the token itself is stored nowhere. `tag` is the last-updated tag (milliseconds).
    """

    serial: str
    card_number: str
    salt: str
    tag: int
    created_at: str
    google: bool = False
    """A Save to Google Wallet link was made (or Google called back a save): updates PATCH the Google object too.
    A deletion callback turns it off: no PATCH follows for a pass no longer in anyone's Google Wallet."""
    google_saved: bool | None = None
    """The last Google callback: True saved, False deleted, None none received."""
    face: str | None = None
    """The fingerprint of what the pass showed when last made or pushed (domain.passes.face_fingerprint)."""


class RegistrationDoc(Document):
    """`<tid>#pass#<serial>` / `device#<device id>`: a device that installed the pass, and where to push."""

    device_id: str
    push_token: str
    registered_at: str


class PushDoc(Document):
    """`<tid>#pass-push#<serial>` / `<tag>#<target>`: one update (tag) to one target (a device, or google).

    The exactly-once guard of the update worker: an attempt is claimed with a conditional write, like webhook
    deliveries (storage/webhooks.py), so a job delivered twice pushes once.
    """

    status: str
    attempts: int = 0
    token: str | None = None
    claimed_at: str | None = None
    last_status_code: int | None = None
    last_error: str | None = None
