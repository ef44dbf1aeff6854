"""The roles a key can hold and the scopes keys live in, as the API spells them.

Defined with the schemas (key models take a Role) because the schemas may not
import the domain; domain/roles.py holds the rules about them.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PLATFORM = "platform"
    AGENCY = "agency"
    TENANT_ADMIN = "tenant_admin"
    POS = "pos"
    SUPPORT = "support"


class ScopeKind(StrEnum):
    """Where a key lives: the platform, one agency, or one tenant."""

    PLATFORM = "platform"
    AGENCY = "agency"
    TENANT = "tenant"
