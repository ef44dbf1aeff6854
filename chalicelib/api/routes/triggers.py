"""Trigger messages of a program (tenant admin): which automated messages are on, and how they went."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.triggers import TriggerSettings, TriggerSettingsOut

if TYPE_CHECKING:
    from chalicelib.services.marketing import triggers
else:
    triggers = lazy_module("chalicelib.services.marketing.triggers")

router = Router("Triggers")
ADMIN = {Role.TENANT_ADMIN}


@router.route("GET", "/v1/programs/{program_id}/triggers", roles=ADMIN, response=TriggerSettingsOut, errors=(404,),
              summary="The program's trigger messages (welcome, birthday, points expiring, tier upgrade, win-back, "
                      "feedback): settings, counts per trigger and the last daily run.")
def get_triggers(req: Request) -> TriggerSettingsOut:
    return triggers.get(tenant_id_of(req.caller), req.path["program_id"])


@router.route("PUT", "/v1/programs/{program_id}/triggers", roles=ADMIN, body=TriggerSettings,
              response=TriggerSettingsOut, errors=(404, 422),
              summary="Replace the program's trigger settings; templates, coupon campaign and survey must exist "
                      "and SMS triggers must run outside the quiet hours.")
def put_triggers(req: Request) -> TriggerSettingsOut:
    return triggers.put(tenant_id_of(req.caller), req.path["program_id"], req.body, req.actor)
