"""Identifier formats shared by the API, the YAML files and storage keys."""

from __future__ import annotations

import re
import secrets

# Slugs are the ids humans choose (tenant, agency, program, store). They never
# contain '#', the separator of storage keys, so one tenant's partition key is
# never a prefix of another's.
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$"
_SLUG_RE = re.compile(SLUG_PATTERN)

# Words that would make a tenant's partition look like a control-plane one.
RESERVED_TENANT_IDS = frozenset({"platform", "agency", "system", "admin", "v1"})

_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"


def is_slug(value: str) -> bool:
    return bool(_SLUG_RE.fullmatch(value))


def new_id(length: int = 12) -> str:
    """A random, unambiguous lowercase id (no l/1/0 confusion)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
