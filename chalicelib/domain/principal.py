"""Who is calling: the authenticated identity every request carries."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.roles import Role, ScopeKind, scope_of


@dataclass(frozen=True)
class Principal:
    role: Role
    key_id: str
    owner: str
    """The scope the key belongs to: a tenant id, an agency id, or 'platform'."""
    agency_id: str | None = None
    """For agency keys, the agency; for tenant keys, the tenant's agency."""
    store_id: str | None = None
    """A POS key bound to one store may only act for that store."""
    user_id: str | None = None
    """A signed-in person (their session is `key_id`); None for an API key."""
    email: str | None = None

    @property
    def is_person(self) -> bool:
        return self.user_id is not None

    @property
    def scope(self) -> ScopeKind:
        return scope_of(self.role)

    @property
    def tenant_id(self) -> str | None:
        return self.owner if self.scope is ScopeKind.TENANT else None

    def to_context(self) -> dict[str, str]:
        """Flat string map: API Gateway authorizer contexts allow nothing else."""
        ctx = {"role": self.role.value, "key_id": self.key_id, "owner": self.owner}
        if self.agency_id:
            ctx["agency_id"] = self.agency_id
        if self.store_id:
            ctx["store_id"] = self.store_id
        if self.user_id:
            ctx["user_id"] = self.user_id
            ctx["email"] = self.email or ""
        return ctx

    @classmethod
    def from_context(cls, ctx: dict[str, object]) -> Principal | None:
        try:
            role = Role(str(ctx["role"]))
            return cls(
                role=role,
                key_id=str(ctx["key_id"]),
                owner=str(ctx["owner"]),
                agency_id=str(ctx["agency_id"]) if ctx.get("agency_id") else None,
                store_id=str(ctx["store_id"]) if ctx.get("store_id") else None,
                user_id=str(ctx["user_id"]) if ctx.get("user_id") else None,
                email=str(ctx["email"]) if ctx.get("email") else None,
            )
        except (KeyError, ValueError):
            return None
