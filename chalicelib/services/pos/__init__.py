"""What a till does: cards, purchases, refunds, gift cards, card series, offline batches, idempotency."""
