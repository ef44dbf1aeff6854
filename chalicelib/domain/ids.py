"""Identifier formats shared by the API, the YAML files and storage keys."""

from __future__ import annotations

import re
import secrets

from chalicelib.schemas.common import SLUG_PATTERN as SLUG_PATTERN

_SLUG_RE = re.compile(SLUG_PATTERN)

_ALPHABET = "abcdefghijkmnopqrstuvwxyz23456789"


def is_slug(value: str) -> bool:
    return bool(_SLUG_RE.fullmatch(value))


def new_id(length: int = 12) -> str:
    """A random, unambiguous lowercase id (no l/1/0 confusion)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))
