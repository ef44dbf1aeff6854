"""Offline receipt batches: what a till uploads after being offline, and the batch's status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, StringConstraints, ValidationError

from chalicelib.errors import ErrorDetail
from chalicelib.schemas.common import ErrorDetailModel, Input, Output, Query, Slug

BatchId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
ReceiptStatus = Literal["pending", "ok", "duplicate", "error"]
BatchState = Literal["accepted", "processing", "done"]


class BatchIn(Input):
    batch_id: BatchId = Field(description="The till's id for this upload: the batch's idempotency key.")
    store_id: Slug | None = Field(default=None, description="The store of purchases that do not name their own.")
    receipts: list[dict[str, Any]] = Field(
        min_length=1,
        description="Up to 500 receipts, in any order. Each is `{\"kind\": \"purchase\", ...}` with the body of "
        "POST /v1/purchases (`purchased_at` required: when the sale happened) or `{\"kind\": \"refund\", ...}` "
        "with the body of POST /v1/refunds plus `refunded_at`. Each receipt is validated on its own: an invalid "
        "one is reported in the batch status and the others go ahead.")


class RefundTime(Input):
    """The one field a refund in a batch adds to the body of POST /v1/refunds."""

    refunded_at: AwareDatetime


class BatchQuery(Query):
    limit: int = Field(default=100, ge=1, le=500, description="Receipts per page.")
    cursor: str | None = Field(default=None, max_length=2048)


class BatchCounts(Output):
    ok: int
    duplicate: int
    error: int
    pending: int


class ReceiptError(Output):
    code: str
    message: str
    field: str | None = Field(default=None, description="The receipt's field at fault, e.g. `items[0].amount`.")
    details: list[ErrorDetailModel] = Field(default_factory=list)


class PurchaseSummary(Output):
    card_number: str | None
    points_earned: int
    points_redeemed: int
    discount: int
    payable: int
    balance: int = Field(description="The card's spendable points after this receipt.")
    pending: int
    rule_version: int | None = None


class RefundSummary(Output):
    card_number: str | None
    amount_refunded: int
    points_reversed: int
    points_returned: int
    points_written_off: int = 0
    balance: int
    pending: int


class BatchReceipt(Output):
    index: int = Field(description="The receipt's position in the upload, from 0.")
    kind: Literal["purchase", "refund"] | None
    receipt_id: str | None
    refund_id: str | None = None
    status: ReceiptStatus
    duplicate: bool = Field(default=False, description="Already processed (earlier in the batch or online): "
                            "`result` is the original answer.")
    result: PurchaseSummary | RefundSummary | None = None
    error: ReceiptError | None = None


class BatchAccepted(Output):
    batch_id: str
    status: BatchState
    receipts: int
    counts: BatchCounts
    status_url: str
    replayed: bool = Field(default=False, description="True when this batch had already been uploaded.")


class BatchSummary(Output):
    batch_id: str
    status: BatchState
    total: int = Field(description="Receipts in the batch.")
    counts: BatchCounts
    store_id: str | None = None
    created_at: datetime
    completed_at: datetime | None = None


class BatchStatus(BatchSummary):
    receipts: list[BatchReceipt] = Field(description="Each receipt's status and result or error, in upload order.")
    has_more: bool
    cursor: str | None = None


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "receipt"


def error_details(err: ValidationError) -> list[ErrorDetail]:
    """A receipt's validation errors, field paths relative to the receipt (`items[0].amount`)."""
    details = []
    for item in err.errors(include_url=False):
        loc = tuple(p for p in item["loc"] if p not in ("function-after", "function-before"))
        details.append(ErrorDetail(_loc(loc), item["msg"]))
    return details
