"""The member site's branding through the API: the same service and model as the console's `/console/branding`.

Colours are `#rrggbb` only, the logo an image of the tenant's own library (`/v1/assets`), the sign-up program
one of its active points programs; each change is audited (`tenant.branding_updated`) and reaches the member
site within a minute (the settings cache).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.tenancy import Branding

if TYPE_CHECKING:
    from chalicelib.services.tenancy import branding
else:
    branding = lazy_module("chalicelib.services.tenancy.branding")

router = Router("Branding")
ADMIN = {Role.TENANT_ADMIN}


@router.route("GET", "/v1/branding", roles=ADMIN, response=Branding,
              summary="The member site's colours, logo and sign-up program (defaults until saved).")
def get_branding(req: Request) -> Branding:
    return branding.get(tenant_id_of(req.caller))


@router.route("PUT", "/v1/branding", roles=ADMIN, body=Branding, response=Branding, errors=(404, 409, 422),
              summary="Replace the member site's branding: colours as #rrggbb, a logo from your image library, "
                      "one of your active points programs for sign-ups (absent fields take their defaults).")
def put_branding(req: Request) -> Branding:
    return branding.update(tenant_id_of(req.caller), req.body, req.actor)
