"""How the local stack's moto slows down as a table grows, with and without the transaction shim.

Times one purchase-like TransactWriteItems through boto3 on in-process moto, on the loyalty
table of infra/resources.json holding --small and then --large existing items:
  * Update `<tenant>#card#N / card`: SET balance = balance + :p, version = version + :one
    IF version = :v;
  * Put a ledger entry in the same partition;
  * Put a receipt IF attribute_not_exists(pk).
Each size is measured without the shim (moto 5.2.5 deep-copies the table per transaction) and
with it (infra/local/moto_patches.py), on the same pre-filled table. For context it also times
a GetItem and a Query of one card partition, which the shim does not change: moto's Query sorts
every item of the table, so it grows with the table too.

Run: .venv/bin/python -m bench.moto_growth --small 100 --large 20000 --tx 200
Unshimmed transactions on a large table take seconds each: a cell stops after --budget seconds
once it has --min-tx samples (the table reports n).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import boto3
from moto import mock_aws

from infra.local.moto_patches import install_transaction_shim, uninstall_transaction_shim
from infra.local.resources import create_resources

TABLE = "LoyaltyTable"  # logical id in infra/resources.json: where purchases go
TENANT = "t-bench"
ITEMS_PER_CARD = 10  # one card item plus ledger entries per partition


def _isolate() -> None:
    """In-process moto only: no real endpoint, profile or credentials may leak in."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                       "AWS_DEFAULT_REGION": "eu-central-1"})


def _card_pk(n: int) -> str:
    return f"{TENANT}#card#{n}"


def prefill(ddb, table: str, count: int) -> int:
    """`count` items in partitions of ITEMS_PER_CARD (a card and its ledger), by batch_write_item; returns cards."""
    items = []
    for i in range(count):
        card, slot = divmod(i, ITEMS_PER_CARD)
        if slot == 0:
            item = {"pk": {"S": _card_pk(card)}, "sk": {"S": "card"}, "balance": {"N": "0"}, "version": {"N": "0"}}
        else:
            item = {"pk": {"S": _card_pk(card)}, "sk": {"S": f"ledger#{i:08d}"}, "points": {"N": "10"},
                    "kind": {"S": "earn"}, "at": {"S": "2024-01-01T00:00:00Z"}}
        items.append({"PutRequest": {"Item": item}})
    for start in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={table: items[start : start + 25]})
    return (count + ITEMS_PER_CARD - 1) // ITEMS_PER_CARD


class Purchases:
    """Purchase-like transactions over the pre-filled cards, keeping each card's version to pass the condition."""

    def __init__(self, ddb, table: str, cards: int) -> None:
        self.ddb, self.table, self.cards = ddb, table, cards
        self.versions = [0] * cards
        self.count = 0

    def __call__(self) -> None:
        n = self.count % self.cards
        self.count += 1
        pk = _card_pk(n)
        self.ddb.transact_write_items(TransactItems=[
            {"Update": {
                "TableName": self.table,
                "Key": {"pk": {"S": pk}, "sk": {"S": "card"}},
                "UpdateExpression": "SET balance = balance + :p, version = version + :one",
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":p": {"N": "5"}, ":one": {"N": "1"},
                                              ":v": {"N": str(self.versions[n])}},
            }},
            {"Put": {
                "TableName": self.table,
                "Item": {"pk": {"S": pk}, "sk": {"S": f"ledger#tx#{self.count:08d}"}, "points": {"N": "5"},
                         "kind": {"S": "purchase"}},
            }},
            {"Put": {
                "TableName": self.table,
                "Item": {"pk": {"S": f"{TENANT}#receipt#{self.count:08d}"}, "sk": {"S": "receipt"},
                         "card": {"S": pk}, "amount": {"N": "500"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }},
        ])
        self.versions[n] += 1


def timed(fn: Callable[[], None], n: int, budget: float, min_n: int, warmup: int = 10) -> list[float]:
    """Milliseconds per call; stops early after `budget` seconds once `min_n` samples are in."""
    for _ in range(warmup):
        fn()
    out: list[float] = []
    deadline = time.monotonic() + budget
    while len(out) < n and (len(out) < min_n or time.monotonic() < deadline):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def measure(size: int, args: argparse.Namespace) -> dict[str, list[float]]:
    """Samples per row label, on a fresh moto holding `size` items."""
    results: dict[str, list[float]] = {}
    with mock_aws():
        table = create_resources("bench")[TABLE]
        ddb = boto3.client("dynamodb", region_name="eu-central-1")
        cards = prefill(ddb, table, size)
        purchase = Purchases(ddb, table, cards)
        for label, shim in (("TransactWriteItems, moto as is", False), ("TransactWriteItems, shim", True)):
            (install_transaction_shim if shim else uninstall_transaction_shim)()
            try:
                results[label] = timed(purchase, args.tx, args.budget, args.min_tx)
            finally:
                uninstall_transaction_shim()
        key = {"pk": {"S": _card_pk(cards // 2)}, "sk": {"S": "card"}}
        results["GetItem (context)"] = timed(lambda: ddb.get_item(TableName=table, Key=key), args.tx, args.budget,
                                             args.min_tx)
        results["Query one partition (context)"] = timed(
            lambda: ddb.query(TableName=table, KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues={":pk": key["pk"]}),
            args.tx, args.budget, args.min_tx)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--small", type=int, default=100, help="items in the small table")
    parser.add_argument("--large", type=int, default=20000, help="items in the large table")
    parser.add_argument("--tx", type=int, default=200, help="samples per cell")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per cell before stopping early")
    parser.add_argument("--min-tx", type=int, default=10, help="samples per cell even over budget")
    args = parser.parse_args()
    _isolate()

    small, large = measure(args.small, args), measure(args.large, args)
    head = f"{'operation':<32} {'n':>4} {f'median ms @{args.small}':>18} {'n':>4} {f'median ms @{args.large}':>20} " \
           f"{'ratio':>8}"
    print(head)
    print("-" * len(head))
    for label in small:
        a, b = statistics.median(small[label]), statistics.median(large[label])
        print(f"{label:<32} {len(small[label]):>4} {a:>18.2f} {len(large[label]):>4} {b:>20.2f} {b / a:>7.1f}x")


if __name__ == "__main__":
    main()
