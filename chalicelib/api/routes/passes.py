"""Wallet passes: a card's Apple Wallet pass and Google Wallet link (staff), and Apple's pass web service (devices).

The web service's routes are public in the API's sense (no API key: the
device calls them) and authenticated by each pass's own token
(`Authorization: ApplePass <token>`) in the service. Their paths are Apple's,
under the pass's webServiceURL `<public base>/v1/wallet/apple/<tenant id>`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice.app import Response

from chalicelib.api.registry import PUBLIC, Request, Router
from chalicelib.api.routes.common import lazy_module, tenant_id_of
from chalicelib.domain.roles import Role
from chalicelib.schemas.wallet import (
    PKPASS_TYPE,
    DeviceLog,
    DeviceRegistration,
    GoogleCallback,
    GoogleCallbackAccepted,
    GoogleSaveLink,
    SerialsQuery,
    UpdatedSerials,
)

if TYPE_CHECKING:
    from chalicelib.services.wallet import apple, google, google_callbacks
else:
    apple = lazy_module("chalicelib.services.wallet.apple")
    google = lazy_module("chalicelib.services.wallet.google")
    google_callbacks = lazy_module("chalicelib.services.wallet.google_callbacks")

router = Router("Wallet")
READERS = {Role.POS, Role.TENANT_ADMIN, Role.SUPPORT}
SERVICE = "/v1/wallet/apple/{tenant_id}/v1"
REGISTRATION = SERVICE + "/devices/{device_id}/registrations/{pass_type_id}/{serial}"


def _pkpass(package: Any, status: int = 200) -> Response:
    return Response(body=package.data, status_code=status, headers={
        "Content-Type": PKPASS_TYPE, "Content-Disposition": 'attachment; filename="card.pkpass"',
        "Last-Modified": package.last_modified, "Cache-Control": "no-store"})


def _header(req: Request, name: str) -> str | None:
    return req.headers.get(name.lower()) or req.headers.get(name)


@router.route("GET", "/v1/cards/{number}/wallet/apple", roles=READERS, content_type=PKPASS_TYPE, errors=(404, 503),
              summary="The card's Apple Wallet pass (.pkpass, signed; made on first request). Send `Accept: "
                      "application/vnd.apple.pkpass` (or */*).")
def card_apple_pass(req: Request) -> Response:
    return _pkpass(apple.for_card(tenant_id_of(req.caller), req.path["number"]))


@router.route("GET", "/v1/cards/{number}/wallet/google", roles=READERS, response=GoogleSaveLink, errors=(404, 503),
              summary="The card's Save to Google Wallet link (a signed JWT with the loyalty class and object).")
def card_google_link(req: Request) -> GoogleSaveLink:
    return google.save_link(tenant_id_of(req.caller), req.path["number"])


@router.route("POST", "/v1/wallet/google/{tenant_id}/callback", roles=PUBLIC, body=GoogleCallback,
              response=GoogleCallbackAccepted, errors=(401, 404, 503),
              summary="Google Wallet: a pass was saved or deleted (a message signed with ECv2SigningOnly, verified "
                      "against Google's root signing keys; a forged, expired or replayed one is 401).")
def wallet_google_callback(req: Request) -> GoogleCallbackAccepted:
    return google_callbacks.receive(req.path["tenant_id"], req.body)


@router.route("POST", REGISTRATION, roles=PUBLIC, body=DeviceRegistration, errors=(401, 404),
              summary="Apple Wallet: register a device for a pass's updates (201 new, 200 already registered). "
                      "Authorization: ApplePass <token>.")
def wallet_register_device(req: Request) -> tuple[int, dict[str, Any]]:
    p = req.path
    status = apple.register(p["tenant_id"], p["device_id"], p["pass_type_id"], p["serial"],
                            _header(req, "Authorization"), req.body.push_token)
    return status, {}


@router.route("DELETE", REGISTRATION, roles=PUBLIC, errors=(401, 404),
              summary="Apple Wallet: the device no longer wants the pass's updates. Authorization: ApplePass <token>.")
def wallet_unregister_device(req: Request) -> dict[str, Any]:
    p = req.path
    apple.unregister(p["tenant_id"], p["device_id"], p["pass_type_id"], p["serial"], _header(req, "Authorization"))
    return {}


@router.route("GET", SERVICE + "/devices/{device_id}/registrations/{pass_type_id}", roles=PUBLIC,
              query=SerialsQuery, response=UpdatedSerials, errors=(404,),
              summary="Apple Wallet: the device's passes updated since `passesUpdatedSince` (204 when none).")
def wallet_updated_serials(req: Request) -> Any:
    p = req.path
    found = apple.updated_serials(p["tenant_id"], p["device_id"], p["pass_type_id"],
                                  req.query.passes_updated_since)
    return found if found is not None else Response(body="", status_code=204)


@router.route("GET", SERVICE + "/passes/{pass_type_id}/{serial}", roles=PUBLIC, content_type=PKPASS_TYPE,
              errors=(401, 404),
              summary="Apple Wallet: the pass as it is now; 304 when unchanged since If-Modified-Since. "
                      "Authorization: ApplePass <token>.")
def wallet_latest_pass(req: Request) -> Response:
    p = req.path
    package = apple.latest(p["tenant_id"], p["pass_type_id"], p["serial"], _header(req, "Authorization"),
                           _header(req, "If-Modified-Since"))
    if package is None:
        return Response(body=b"", status_code=304, headers={"Cache-Control": "no-store"})
    return _pkpass(package)


@router.route("POST", SERVICE + "/log", roles=PUBLIC, body=DeviceLog,
              summary="Apple Wallet: a device's error messages about our passes (logged, at most 50 lines).")
def wallet_device_log(req: Request) -> dict[str, Any]:
    apple.log(req.path["tenant_id"], req.body.logs, req.source_ip)
    return {}
