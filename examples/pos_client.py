"""A minimal POS client for the loyalty API: copy it into a till or an e-shop. Standard library only.

    python examples/pos_client.py --api http://127.0.0.1:8000 --pos-key lp_pos_... --admin-key lp_adm_...

The demo identifies a customer by phone (issuing a card if there is none), quotes a basket, buys it with a
coupon and points, refunds one line and prints the balances. Money is integer minor units (kopecks), points
are integers. The walk-through with curl is docs/pos-client.md.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

RETRYABLE_CONFLICTS = frozenset({"card_busy", "idempotency_in_flight"})
"""409 codes that mean "try the same request again shortly", not "this request is wrong"."""


class LoyaltyError(Exception):
    """An error answer of the API ({"error": {code, message, details}}), or a network failure (status 0)."""

    def __init__(self, status: int, code: str, message: str, details: list[dict[str, str]] | None = None,
                 request_id: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.request_id, self.retry_after = request_id, retry_after


def _error_of(status: int, raw: bytes, headers: Mapping[str, str]) -> LoyaltyError:
    try:
        error = json.loads(raw)["error"]
    except (ValueError, KeyError, TypeError):
        error = {"code": f"http_{status}", "message": raw[:200].decode(errors="replace")}
    retry_after = headers.get("Retry-After")
    return LoyaltyError(status, error.get("code", f"http_{status}"), error.get("message", ""),
                        error.get("details"), error.get("request_id"),
                        float(retry_after) if retry_after and retry_after.isdigit() else None)


class LoyaltyClient:
    """POS calls over HTTPS. Writes carry an Idempotency-Key derived from the receipt, so a retry is safe."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0, max_attempts: int = 5,
                 max_wait: float = 30.0, sleep: Callable[[float], None] = time.sleep) -> None:
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError("base_url must be an http(s) URL")
        self.base_url, self.api_key = base_url.rstrip("/"), api_key
        self.timeout, self.max_attempts, self.max_wait, self.sleep = timeout, max_attempts, max_wait, sleep

    def request(self, method: str, path: str, body: Any = None, query: Mapping[str, str] | None = None,
                idempotency_key: str | None = None, retry: bool | None = None) -> Any:
        """One call; retried (same bytes, same key) on network errors, 409 busy, 429 and 5xx when safe.

        Safe (the default for reads and for writes with an idempotency key): the server answers a repeat
        with the stored result instead of doing the work twice.
        """
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None  # serialised once: retries send the same bytes
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        retry = (method == "GET" or idempotency_key is not None) if retry is None else retry
        attempt = 0
        while True:
            attempt += 1
            req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310 (scheme checked)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (scheme checked)
                    return json.loads(resp.read() or b"null")
            except urllib.error.HTTPError as exc:
                error = _error_of(exc.code, exc.read(), exc.headers)
                busy = exc.code == 409 and error.code in RETRYABLE_CONFLICTS
                transient = busy or exc.code == 429 or exc.code >= 500
                too_long = error.retry_after is not None and error.retry_after > self.max_wait  # e.g. a daily quota
                if not (retry and transient) or too_long or attempt == self.max_attempts:
                    raise error from None
                wait = error.retry_after
            except OSError as exc:  # refused, reset, timed out: the request may or may not have been applied
                if not retry or attempt == self.max_attempts:
                    raise LoyaltyError(0, "network_error", f"{exc}; outcome unknown: send the same request "
                                       "again later (it is idempotent)") from None
                wait = None
            self.sleep(wait if wait is not None else random.uniform(0, min(8.0, 0.25 * 2 ** attempt)))

    def identify(self, phone: str) -> dict[str, Any] | None:
        """The customer and their cards by phone (any format: '8 916 123-45-67'), or None if unknown."""
        try:
            return self.request("GET", "/v1/customers/lookup", query={"phone": phone})
        except LoyaltyError as exc:
            if exc.code == "customer_not_found":
                return None
            raise

    def issue_card(self, program_id: str, phone: str, first_name: str | None = None) -> dict[str, Any]:
        """A virtual card registered to the customer with this phone (created if new)."""
        customer = {"phone": phone, **({"first_name": first_name} if first_name else {})}
        return self.request("POST", "/v1/cards", {"program_id": program_id, "customer": customer},
                            idempotency_key=f"card-{program_id}-{phone}")

    def card(self, number: str) -> dict[str, Any]:
        return self.request("GET", f"/v1/cards/{number}")

    @staticmethod
    def receipt(receipt_id: str, card_number: str, store_id: str, items: Sequence[Mapping[str, Any]],
                redeem_points: int = 0, coupons: Sequence[str] = ()) -> dict[str, Any]:
        """A purchase body; `total` is the sum of the lines, as the API requires."""
        return {"receipt_id": receipt_id, "card_number": card_number, "store_id": store_id,
                "total": sum(int(item["amount"]) for item in items), "items": [dict(item) for item in items],
                "redeem_points": redeem_points, "coupons": list(coupons)}

    def quote(self, receipt_id: str, card_number: str, store_id: str, items: Sequence[Mapping[str, Any]],
              redeem_points: int = 0, coupons: Sequence[str] = ()) -> dict[str, Any]:
        """What the purchase would give (discount, payable, points), nothing written: show it before payment."""
        body = self.receipt(receipt_id, card_number, store_id, items, redeem_points, coupons)
        return self.request("POST", "/v1/purchases/quote", body, retry=True)

    def purchase(self, receipt_id: str, card_number: str, store_id: str, items: Sequence[Mapping[str, Any]],
                 redeem_points: int = 0, coupons: Sequence[str] = ()) -> dict[str, Any]:
        """Exactly once per receipt_id: resending the same receipt returns the first answer."""
        body = self.receipt(receipt_id, card_number, store_id, items, redeem_points, coupons)
        return self.request("POST", "/v1/purchases", body, idempotency_key=f"purchase-{receipt_id}")

    def refund(self, refund_id: str, receipt_id: str, items: Sequence[Mapping[str, Any]] | None = None,
               amount: int | None = None) -> dict[str, Any]:
        """Refund lines (`items`: sku, quantity, amount), an `amount`, or (neither) everything left."""
        body: dict[str, Any] = {"refund_id": refund_id, "receipt_id": receipt_id}
        if items is not None:
            body["items"] = [dict(item) for item in items]
        if amount is not None:
            body["amount"] = amount
        return self.request("POST", "/v1/refunds", body, idempotency_key=f"refund-{refund_id}")


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes | str, tolerance: int = 300,
                   now: float | None = None) -> bool:
    """True if a `v1=` of Loyalty-Signature is HMAC-SHA256(secret, f"{t}.{raw body}") and t is recent.

    Pass the raw body exactly as received. During a secret rotation the header carries two `v1=`
    (new secret first); either one matching is enough. An old timestamp is a replayed delivery.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    pairs = [part.strip().split("=", 1) for part in lowered.get("loyalty-signature", "").split(",") if "=" in part]
    timestamps = [value for key, value in pairs if key == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    timestamp = timestamps[0]
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, value) for key, value in pairs if key == "v1")


PROGRAM, STORE, COUPON = "zerno-points", "msk-tverskaya", "WELCOME10"  # the coffee-chain tenant of `make run`
BASKET = [{"sku": "latte-l", "category": "coffee", "quantity": 2, "amount": 40000},
          {"sku": "croissant", "category": "bakery", "quantity": 1, "amount": 20000}]
REDEEM = 100
REFUND_LINES = [{"sku": "croissant", "quantity": 1, "amount": 20000}]
COUPON_CAMPAIGN = {"id": "welcome10", "name": "Welcome 10%", "program_id": PROGRAM, "mode": "shared", "code": COUPON,
                   "effect": {"kind": "percent_off", "value": 1000}, "limits": {"uses_per_code": 0}}
WELCOME_BONUS = 200


def welcome_bonus(number: str) -> dict[str, Any]:
    """The admin's manual credit: spendable at once (earned points wait out the return window first)."""
    return {"points": WELCOME_BONUS, "reason": "welcome bonus", "adjustment_id": f"welcome-{number}"}


def demo(pos: LoyaltyClient, admin: LoyaltyClient | None, phone: str, receipt_id: str,
         say: Callable[[str], None] = print) -> dict[str, Any]:
    """The flow of docs/pos-client.md; returns every answer (tests/e2e checks them)."""
    out: dict[str, Any] = {"campaign": None}
    if admin is not None:  # the tenant admin's set-up: a shared coupon
        try:
            out["campaign"] = admin.request("POST", "/v1/coupon-campaigns", COUPON_CAMPAIGN)
        except LoyaltyError as exc:
            if exc.code != "campaign_exists":  # from an earlier run
                raise
    found = pos.identify(phone)
    card = found["cards"][0] if found and found["cards"] else pos.issue_card(PROGRAM, phone, "Anna")
    out["identified"], out["card"] = found is not None, card
    number = card["number"]
    say(f"card {number}: {'found' if found else 'issued'}, balance {card['balance']}, pending {card['pending']}")
    if admin is not None:  # and a welcome bonus to spend (once per card)
        out["bonus"] = admin.request("POST", f"/v1/cards/{number}/adjustments", welcome_bonus(number),
                                     idempotency_key=f"welcome-{number}")
    out["quote"] = q = pos.quote(receipt_id, number, STORE, BASKET, REDEEM, [COUPON])
    say(f"quote: total {q['payable'] + q['discount']}, discount {q['discount']}, to pay {q['payable']}, "
        f"earns {q['points_earned']}")
    out["purchase"] = p = pos.purchase(receipt_id, number, STORE, BASKET, REDEEM, [COUPON])
    coupons = ", ".join(f"{c['code']} " + ("applied" if c["applied"] else f"refused: {c['reason']}")
                        for c in p["coupons"])
    say(f"purchase {receipt_id}: paid {p['payable']}, redeemed {p['points_redeemed']}, earned {p['points_earned']}, "
        f"{coupons}, balance {p['balance']}, pending {p['pending']}")
    out["refund"] = r = pos.refund(f"{receipt_id}-r1", receipt_id, items=REFUND_LINES)
    say(f"refund croissant: {r['amount_refunded']} back, {r['points_reversed']} points reversed, "
        f"{r['points_returned']} returned, balance {r['balance']}, pending {r['pending']}")
    out["final"] = c = pos.card(number)
    say(f"card {number}: {c['status']}, balance {c['balance']}, pending {c['pending']}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--api", default=os.environ.get("API", "http://127.0.0.1:8000"))
    parser.add_argument("--pos-key", default=os.environ.get("POS_KEY"), help="lp_pos_... (env POS_KEY)")
    parser.add_argument("--admin-key", default=os.environ.get("ADMIN_KEY"),
                        help="lp_adm_... (env ADMIN_KEY): creates the coupon and a welcome bonus; optional")
    parser.add_argument("--phone", default="+79161234567")
    parser.add_argument("--receipt-id", default=time.strftime("demo-%Y%m%d-%H%M%S"),
                        help="a new one per run (the same one again replays the first answer)")
    args = parser.parse_args(argv)
    if not args.pos_key:
        parser.error("--pos-key (or POS_KEY) is required: `make run` prints it")
    admin = LoyaltyClient(args.api, args.admin_key) if args.admin_key else None
    try:
        demo(LoyaltyClient(args.api, args.pos_key), admin, args.phone, args.receipt_id)
    except LoyaltyError as exc:
        print(f"error: {exc} {exc.details or ''}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
