"""Phone verification for public forms (no key): a code by SMS, then a proof that one action spends."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import PUBLIC, Request, Router
from chalicelib.api.routes.common import lazy_module
from chalicelib.schemas.verification import PhoneVerified, VerificationCheck, VerificationStart, VerificationStarted

if TYPE_CHECKING:
    from chalicelib.services.customers import verification
else:
    verification = lazy_module("chalicelib.services.customers.verification")

router = Router("Phone verification")


@router.route("POST", "/v1/public/verifications/{tenant_id}", roles=PUBLIC, body=VerificationStart,
              response=VerificationStarted, status=201, errors=(400, 404, 422, 429),
              summary="Send a 6-digit code by SMS to the phone a public form was given (valid 5 minutes, 5 tries). "
                      "The answer is the same for any phone. Rate-limited per phone, per address and per tenant.")
def start_verification(req: Request) -> tuple[int, VerificationStarted]:
    return verification.start(req.path["tenant_id"], req.body, req.source_ip)


@router.route("POST", "/v1/public/verifications/{tenant_id}/{verification_id}/check", roles=PUBLIC,
              body=VerificationCheck, response=PhoneVerified, errors=(400, 404, 409, 429),
              summary="Check the code: a right one answers a proof (15 minutes) that one action spends, such as a "
                      "survey response's `phone_verification`.")
def check_verification(req: Request) -> PhoneVerified:
    return verification.check(req.path["tenant_id"], req.path["verification_id"], req.body)
