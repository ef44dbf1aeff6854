"""Customer imports from CSV (tenant admin): upload through a presigned URL and a background job, or inline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.imports import CustomerImport, ImportCreate, ImportCreated, ImportInline

if TYPE_CHECKING:
    from chalicelib.services.customers import imports as customer_import
else:
    customer_import = lazy_module("chalicelib.services.customers.imports")

router = Router("Customer imports")
ADMIN = {Role.TENANT_ADMIN}


@router.route("POST", "/v1/customer-imports", roles=ADMIN, body=ImportCreate, response=ImportCreated, status=201,
              errors=(422,), summary="Start an import: returns a presigned URL (15 minutes) to PUT the CSV file to, "
                                     "then call /start.")
def create_import(req: Request) -> ImportCreated:
    return customer_import.create(tenant_id_of(req.caller), req.body, req.actor)


@router.route("POST", "/v1/customer-imports/inline", roles=ADMIN, body=ImportInline, response=CustomerImport,
              status=201, errors=(413, 422), summary="Import a small CSV sent in the body, at once.")
def inline_import(req: Request) -> tuple[int, CustomerImport]:
    return customer_import.inline(tenant_id_of(req.caller), req.body, req.actor)


@router.route("POST", "/v1/customer-imports/{import_id}/start", roles=ADMIN, response=CustomerImport, status=202,
              errors=(404, 409, 422), summary="Check the uploaded file's header and queue the import.")
def start_import(req: Request) -> tuple[int, CustomerImport]:
    return customer_import.start(tenant_id_of(req.caller), req.path["import_id"], req.actor)


@router.route("GET", "/v1/customer-imports", roles=ADMIN, query=PageQuery, response=Page[CustomerImport],
              summary="The tenant's customer imports, newest first.")
def list_imports(req: Request) -> Page[CustomerImport]:
    return page(*customer_import.list_all(tenant_id_of(req.caller), req.query.limit, req.query.cursor))


@router.route("GET", "/v1/customer-imports/{import_id}", roles=ADMIN, response=CustomerImport, errors=(404,),
              summary="An import's status, counts and progress; when finished with rejected rows, a link to the "
                      "result file.")
def get_import(req: Request) -> CustomerImport:
    return customer_import.get(tenant_id_of(req.caller), req.path["import_id"])
