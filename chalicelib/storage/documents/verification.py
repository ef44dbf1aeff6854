"""A phone verification (`<tid>#verification#<vid>` / `code`): keyed hashes only, never the phone or the code."""

from __future__ import annotations

from chalicelib.storage.documents.common import Document


class VerificationDoc(Document):
    """One code sent; its attempt count is the record's `version`, not a doc field."""

    phone_hash: str
    code_hash: str
    purpose: str = ""
    status: str
    expires_at: str
    verified_at: str | None = None
    used_for: str | None = None
    used_at: str | None = None
    finished_at: str | None = None
