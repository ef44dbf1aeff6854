"""What a (partial) refund reverses: proportional, cumulative, never more than the receipt.

Reversals are computed on cumulative totals and rounded down each time, then
the previous cumulative value is subtracted: so several partial refunds add up
exactly to what one full refund would reverse, and a full refund reverses
everything that is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class RefundRefused(Exception):
    def __init__(self, code: str, message: str, field_name: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field_name


@dataclass
class ReceiptLine:
    sku: str
    quantity: int
    amount: int
    weight: int
    refunded_quantity: int = 0
    refunded_amount: int = 0


@dataclass
class ReceiptState:
    total: int
    points_earned: int
    points_redeemed: int
    lines: list[ReceiptLine]
    refunded_amount: int = 0
    refunded_weight_scaled: int = 0
    """Sum over refunds of (refunded weight x total): keeps line and amount refunds on one exact scale."""
    points_reversed: int = 0
    points_returned: int = 0

    @property
    def total_weight(self) -> int:
        return sum(line.weight for line in self.lines)


@dataclass(frozen=True)
class RefundLineRequest:
    sku: str
    quantity: int
    amount: int


@dataclass
class RefundPlan:
    amount: int
    points_reversed: int
    points_returned: int
    line_changes: dict[int, tuple[int, int]] = field(default_factory=dict)
    """line index -> (quantity, amount) refunded now."""
    weight_scaled: int = 0


def _cumulative(part: int, whole: int, value: int) -> int:
    return value * part // whole if whole else 0


def plan(state: ReceiptState, *, lines: list[RefundLineRequest] | None, amount: int | None) -> RefundPlan:
    """Plan a refund by lines, by amount, or of everything left (neither given)."""
    remaining = state.total - state.refunded_amount
    if remaining <= 0:
        raise RefundRefused("already_refunded", "This receipt has been refunded in full.", "receipt_id")
    changes: dict[int, tuple[int, int]] = {}
    if lines:
        weight_scaled = 0
        refund_amount = 0
        for i, req in enumerate(lines):
            idx = _find_line(state, req, changes)
            line = state.lines[idx]
            q_done, a_done = changes.get(idx, (0, 0))
            if line.refunded_quantity + q_done + req.quantity > line.quantity:
                raise RefundRefused("refund_exceeds_line", f"Line {req.sku!r} has only "
                                    f"{line.quantity - line.refunded_quantity - q_done} unit(s) left to refund.",
                                    f"items[{i}].quantity")
            if line.refunded_amount + a_done + req.amount > line.amount:
                raise RefundRefused("refund_exceeds_line", f"Line {req.sku!r} has only "
                                    f"{line.amount - line.refunded_amount - a_done} left to refund.",
                                    f"items[{i}].amount")
            changes[idx] = (q_done + req.quantity, a_done + req.amount)
            refund_amount += req.amount
            if line.amount:
                weight_scaled += line.weight * req.amount * state.total // line.amount
        if refund_amount > remaining:
            raise RefundRefused("refund_exceeds_receipt", f"Only {remaining} is left to refund on this receipt.",
                                "items")
    else:
        refund_amount = remaining if amount is None else amount
        if refund_amount <= 0:
            raise RefundRefused("invalid_amount", "A refund must be for a positive amount.", "amount")
        if refund_amount > remaining:
            raise RefundRefused("refund_exceeds_receipt", f"Only {remaining} is left to refund on this receipt.",
                                "amount")
        weight_scaled = state.total_weight * refund_amount

    full = state.refunded_amount + refund_amount == state.total
    scale = state.total_weight * state.total
    if full:
        returned_cum = state.points_redeemed
        weight_scaled = scale - state.refunded_weight_scaled
    else:
        returned_cum = _cumulative(state.refunded_amount + refund_amount, state.total, state.points_redeemed)
    reversed_cum = reversed_share(state.points_earned, state, state.refunded_amount + refund_amount,
                                  state.refunded_weight_scaled + weight_scaled)
    return RefundPlan(
        amount=refund_amount,
        points_reversed=max(reversed_cum - state.points_reversed, 0),
        points_returned=max(returned_cum - state.points_returned, 0),
        line_changes=changes,
        weight_scaled=weight_scaled,
    )


def reversed_share(points: int, state: ReceiptState, refunded_amount: int, weight_scaled: int) -> int:
    """How much of `points` refunds take back in all once `refunded_amount` (taking `weight_scaled`) is refunded.

    All of it once the receipt is refunded in full; before that, in proportion
    to the refunded weight (to the refunded amount when no line has weight),
    rounded down. `plan` reverses with this, and the promotion simulator
    applies the same to the points a replayed receipt earns.
    """
    if refunded_amount >= state.total:
        return points
    scale = state.total_weight * state.total
    if scale:
        return _cumulative(min(weight_scaled, scale), scale, points)
    return _cumulative(refunded_amount, state.total, points)


def refunded_weights(state: ReceiptState) -> list[int]:
    """Per line, the weight (x total) the refunds recorded on `state` took from it, as `plan` adds them up.

    Rebuilt from refunded amounts, so the same refunds can be taken off the
    weights another rule set gives the lines: a refund by items takes its
    line's weight x amount / line amount, a refund by amount that share of
    every line's weight (the receipt's refunded amount beyond its lines'), a
    full refund everything. A line refunded by items in several parts may
    differ from `plan`'s sum by the rounding of each part. A line's figure
    can exceed its weight (an amount refunded after the line itself was);
    like `plan`, only the receipt's sum is capped.
    """
    if state.refunded_amount >= state.total:
        return [line.weight * state.total for line in state.lines]
    by_amount = max(state.refunded_amount - sum(line.refunded_amount for line in state.lines), 0)
    return [(line.weight * line.refunded_amount * state.total // line.amount if line.amount else 0)
            + line.weight * by_amount for line in state.lines]


def _find_line(state: ReceiptState, req: RefundLineRequest, taken: dict[int, tuple[int, int]]) -> int:
    """The first line with this SKU that still has something left to refund."""
    candidates = [i for i, line in enumerate(state.lines) if line.sku == req.sku]
    if not candidates:
        raise RefundRefused("unknown_line", f"The receipt has no line with SKU {req.sku!r}.", "items")
    for i in candidates:
        line = state.lines[i]
        q_done, _ = taken.get(i, (0, 0))
        if line.refunded_quantity + q_done < line.quantity:
            return i
    return candidates[-1]


def apply(state: ReceiptState, refund: RefundPlan) -> None:
    state.refunded_amount += refund.amount
    state.refunded_weight_scaled += refund.weight_scaled
    state.points_reversed += refund.points_reversed
    state.points_returned += refund.points_returned
    for idx, (quantity, amount) in refund.line_changes.items():
        state.lines[idx].refunded_quantity += quantity
        state.lines[idx].refunded_amount += amount
