"""A tenant's member-site branding: name (the tenant's), logo from its image library, colours, sign-up program.

Set by the tenant's admin in the console (`/console/branding`), by the agency
(`PATCH /v1/agency/tenants/{id}` with `branding`) or in `tenants/*.yaml`. The
colours reach the member site as a small stylesheet of validated `#rrggbb`
values only (`stylesheet`), never as inline style.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib import clock
from chalicelib.domain import colours
from chalicelib.errors import ApiError, ErrorDetail, not_found
from chalicelib.schemas.assets import public_path
from chalicelib.schemas.tenancy import Branding, Program, ProgramKind, ProgramStatus, TenantStatus
from chalicelib.services.program import catalog
from chalicelib.storage import assets, audit, directory


@dataclass(frozen=True)
class Brand:
    """What a member page shows of its tenant."""

    tenant_id: str
    name: str
    primary_colour: str
    accent_colour: str
    logo_url: str | None
    """Same-origin path of the logo (the member site's CSP allows images from its own origin only)."""
    currency: str
    timezone: str


def brand(tenant_id: str) -> Brand:
    """The active tenant's brand; an unknown or inactive tenant is one 404 (its site does not exist)."""
    tenant = catalog.tenant(tenant_id)
    if tenant is None or tenant.status is not TenantStatus.ACTIVE:
        raise not_found("Tenant")
    b = tenant.branding
    logo = public_path(tenant_id, b.logo_asset_id) if b.logo_asset_id else None
    return Brand(tenant_id, tenant.name, b.primary_colour.lower(), b.accent_colour.lower(), logo, tenant.currency,
                 tenant.timezone)


def get(tenant_id: str) -> Branding:
    tenant = directory.get_tenant(tenant_id)
    if tenant is None:
        raise not_found("Tenant")
    return tenant.branding


def update(tenant_id: str, branding: Branding, actor: str) -> Branding:
    """The tenant admin's change: the logo must be an image of the tenant's own library, the program its own."""
    if branding.logo_asset_id and assets.get(tenant_id, branding.logo_asset_id) is None:
        raise ApiError(422, "unknown_asset", "This image is not in your image library.",
                       [ErrorDetail("logo_asset_id", "not in the image library")])
    if branding.sign_up_program_id and _card_program(tenant_id, branding.sign_up_program_id) is None:
        raise ApiError(422, "unknown_program", "Choose an active points program of yours.",
                       [ErrorDetail("sign_up_program_id", "not an active points program")])
    updated = directory.update_tenant(tenant_id, {"branding": branding.model_dump(mode="json")})
    if updated is None:
        raise not_found("Tenant")
    audit.put(audit.entry(tenant_id, action="tenant.branding_updated", actor=actor, at=clock.now(),
                          target=f"tenant:{tenant_id}", detail={k: str(v) for k, v in
                                                                branding.model_dump(mode="json").items()}))
    catalog.forget(tenant_id)
    _wallet_look_changed(tenant_id)
    return updated.branding


def _wallet_look_changed(tenant_id: str) -> None:
    """The Google Wallet class shows the name, colour and logo: PATCH it if it now shows something else."""
    from chalicelib.services.wallet import changes as wallet_changes  # loaded only when the branding changes

    wallet_changes.tenant_look_changed(tenant_id)


def sign_up_program(tenant_id: str) -> Program:
    """The program a sign-up's virtual card belongs to: the one the tenant chose, else its first active one."""
    tenant = catalog.tenant(tenant_id)
    chosen = tenant.branding.sign_up_program_id if tenant else None
    if chosen:
        program = _card_program(tenant_id, chosen)
        if program is not None:
            return program
    for program in card_programs(tenant_id):
        return program
    raise ApiError(409, "no_program", "This business has no active loyalty program to join.")


def card_programs(tenant_id: str) -> list[Program]:
    """The tenant's own active points programs (not gift cards), oldest first."""
    found = directory.list_programs(tenant_id, 100, None).items
    return sorted((p for p in found if _issuable(p)), key=lambda p: (p.created_at, p.id))


def stylesheet(b: Brand) -> str:
    """The member site's colours as CSS custom properties (validated `#rrggbb` only: nothing else gets in)."""
    primary, accent = colours.hex_or(b.primary_colour, "#1f5f8b"), colours.hex_or(b.accent_colour, "#b3541e")
    return (f":root{{--brand:{primary};--brand-accent:{accent};--brand-ink:{colours.ink(primary)};"
            f"--brand-accent-ink:{colours.ink(accent)}}}\n")


def _card_program(tenant_id: str, program_id: str) -> Program | None:
    program = catalog.program(tenant_id, program_id)
    return program if program is not None and _issuable(program) else None


def _issuable(program: Program) -> bool:
    return program.status is ProgramStatus.ACTIVE and program.kind is not ProgramKind.GIFT
