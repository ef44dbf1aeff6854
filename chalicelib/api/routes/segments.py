"""Segments: saved filters over the customer base, previews and counts (tenant admins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page
from chalicelib.schemas.segments import (
    PreviewIn,
    PreviewOut,
    SegmentCount,
    SegmentIn,
    SegmentListQuery,
    SegmentOut,
    SegmentUpdate,
)

if TYPE_CHECKING:
    from chalicelib.services.marketing import segments
else:
    segments = lazy_module("chalicelib.services.marketing.segments")

router = Router("Segments")
ADMIN = {Role.TENANT_ADMIN}


@router.route("POST", "/v1/segments", roles=ADMIN, body=SegmentIn, response=SegmentOut, status=201,
              errors=(400, 422),
              summary="Save a segment: a named filter over customers (all conditions ANDed).")
def create_segment(req: Request) -> SegmentOut:
    return segments.create(tenant_id_of(req.caller), req.body, req.actor)


@router.route("GET", "/v1/segments", roles=ADMIN, query=SegmentListQuery, response=Page[SegmentOut],
              summary="The tenant's segments, newest first.")
def list_segments(req: Request) -> Page[SegmentOut]:
    items, cursor = segments.list_segments(tenant_id_of(req.caller), req.query.limit, req.query.cursor)
    return page(items, cursor)


@router.route("POST", "/v1/segments/preview", roles=ADMIN, body=PreviewIn, response=PreviewOut, errors=(400, 422),
              summary="How many customers a filter selects now, with up to 10 of their ids; nothing is saved.")
def preview_segment(req: Request) -> PreviewOut:
    return segments.preview(tenant_id_of(req.caller), req.body.filter)


@router.route("GET", "/v1/segments/{segment_id}", roles=ADMIN, response=SegmentOut, errors=(404,),
              summary="A segment's definition.")
def get_segment(req: Request) -> SegmentOut:
    return segments.get(tenant_id_of(req.caller), req.path["segment_id"])


@router.route("PUT", "/v1/segments/{segment_id}", roles=ADMIN, body=SegmentUpdate, response=SegmentOut,
              errors=(400, 404, 409, 422),
              summary="Replace a segment's name, description and filter; with `version`, only if unchanged since.")
def update_segment(req: Request) -> SegmentOut:
    return segments.update(tenant_id_of(req.caller), req.path["segment_id"], req.body, req.actor)


@router.route("DELETE", "/v1/segments/{segment_id}", roles=ADMIN, response=SegmentOut, errors=(404, 409),
              summary="Delete a segment; answers with the definition deleted.")
def delete_segment(req: Request) -> SegmentOut:
    return segments.delete(tenant_id_of(req.caller), req.path["segment_id"], req.actor)


@router.route("GET", "/v1/segments/{segment_id}/count", roles=ADMIN, response=SegmentCount, errors=(404,),
              summary="How many customers the segment selects now.")
def count_segment(req: Request) -> SegmentCount:
    return segments.count(tenant_id_of(req.caller), req.path["segment_id"])
