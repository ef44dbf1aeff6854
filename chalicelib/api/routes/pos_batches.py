"""Offline receipt batches: a till uploads the receipts it took while offline; the jobs worker processes them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.pos_batches import BatchAccepted, BatchIn, BatchQuery, BatchStatus, BatchSummary

if TYPE_CHECKING:
    from chalicelib.services.pos import pos_batches
else:
    pos_batches = lazy_module("chalicelib.services.pos.pos_batches")

router = Router("POS")
UPLOADERS = {Role.POS, Role.TENANT_ADMIN}


@router.route("POST", "/v1/pos/batches", roles=UPLOADERS, body=BatchIn, response=BatchAccepted, status=202,
              errors=(403, 409, 422),
              summary="Upload up to 500 offline receipts with their original times (202); processed in order by a "
              "background job, each exactly-once by its id. The same upload again answers 200 with the batch.")
def upload_batch(req: Request) -> tuple[int, Any, dict[str, str]]:
    return pos_batches.accept(tenant_id_of(req.caller), req.caller, req.body, req.actor)


@router.route("GET", "/v1/pos/batches", roles=UPLOADERS, query=PageQuery, response=Page[BatchSummary],
              summary="Offline receipt batches, newest first.")
def list_batches(req: Request) -> Page[BatchSummary]:
    return page(*pos_batches.list_recent(tenant_id_of(req.caller), req.caller, req.query.limit, req.query.cursor))


@router.route("GET", "/v1/pos/batches/{batch_id}", roles=UPLOADERS, query=BatchQuery, response=BatchStatus,
              errors=(404,), summary="A batch's progress and each receipt's result or error (paginated).")
def get_batch(req: Request) -> BatchStatus:
    return pos_batches.get(tenant_id_of(req.caller), req.caller, req.path["batch_id"], req.query.limit,
                           req.query.cursor)
