"""The program's members and their cards, found through the customer base (shared by summary and tiers).

Cards are indexed by customer, not by program, so a program's cards are
found through its customers' card links (one Query per customer, one
BatchGetItem per 100 cards). Anonymous cards (never attached to a customer)
cannot be listed without a table scan and are left out of what is counted
"now" (liability, cards per tier); their ledger entries in the period are
counted like any other.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from chalicelib.domain import reporting
from chalicelib.domain.cards import CardState
from chalicelib.storage import customers as records
from chalicelib.storage import reports as store
from chalicelib.storage.documents.customer import CustomerDoc

BATCH = 100


def registered(doc: CustomerDoc) -> datetime | None:
    """When the customer registered: the record's time."""
    return doc.created_at


def members(scope: str, program_id: str) -> Iterator[tuple[str, CustomerDoc, list[str]]]:
    """(customer id, record, the program's card numbers) of every active customer with a card of the program."""
    for customer_id, doc in records.iter_all(scope):
        if not reporting.is_member(doc.plain()):
            continue
        cards = [number for number, program in records.card_links(scope, customer_id) if program == program_id]
        if cards:
            yield customer_id, doc, cards


def cards_of(scope: str, numbers: Iterator[str]) -> Iterator[CardState]:
    """The cards for a stream of numbers, read 100 at a time."""
    batch: list[str] = []
    for number in numbers:
        batch.append(number)
        if len(batch) >= BATCH:
            yield from store.card_states(scope, batch)
            batch = []
    if batch:
        yield from store.card_states(scope, batch)
