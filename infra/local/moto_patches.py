"""Dev-only patches to the embedded moto. Production talks to real DynamoDB and never imports this.

`install_transaction_shim()`: moto 5.2.5's `DynamoDBBackend.transact_write_items` deep-copies
every table a transaction touches before applying it, so that it can roll back on failure.
A transaction then costs O(table size) (about 26 ms at 100 items, 725 ms at 5,000), and the
local stack slows down as its data grows. The shim keeps moto's own function, unchanged, for
all of the per-item logic (condition checks, ConditionCheck items, the 100-item limit, the
duplicate-item ValidationException, TransactionCanceledException with per-item reasons and
ReturnValuesOnConditionCheckFailure=ALL_OLD); it only replaces the rollback state:

  * before the call, it snapshots only the items the request names (table + key: a deep copy
    of the item, or "absent"), and the length of each touched table's stream, if any;
  * during the call, the whole-table `copy.deepcopy(table)` moto makes for its own rollback
    returns the table itself, so moto's rollback (`self.tables[name] = backup`) is a no-op;
  * if the call raises anything, it puts those items back (the old item, or none), drops
    partitions the transaction created, truncates the streams, and re-raises moto's error as is.

Why wrap rather than copy the function: moto's function is monolithic (no per-item hook), but
its deepcopy is reached through the module global `copy` of `moto.dynamodb.models`; swapping
that global for a proxy that leaves only `Table` objects uncopied, and only inside the shim,
runs moto's exact code. The proxy is scoped by a ContextVar, so other threads and every other
deepcopy in that module (e.g. update_item's copy of the old item) are untouched.

Why the snapshot is complete: moto changes an item only at the key it computes from the request
(Put: the table's key attributes in `Item`; Update/Delete/ConditionCheck: `Key`), and it computes
that key the way `_locate` below does. GSIs and LSIs are not stored separately in moto (every
index query filters `Table.items`), so restoring the items restores the indexes.

Differences from unshimmed moto, both towards real DynamoDB: an item with two operations
(TransactWriteSingleOpException) or a malformed item raises before moto's own rollback, leaving
the earlier items applied in moto; the shim rolls them back. A table named by ARN is rolled back
too (moto backs up tables by name only). Within a partition, a restored item may move to the end
of moto's dict; moto sorts every read by key, so no response depends on that order.

Pinned to moto 5.2.5 and to the exact source of the wrapped function: install fails loudly on
anything else, so an upgrade forces a re-check (moto may have fixed the copy, or moved it).
Not thread-safe beyond moto itself: the local moto server runs every request under one lock,
and in-process `mock_aws()` tests are single-threaded.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from types import ModuleType
from typing import Any

MOTO_VERSION = "5.2.5"
# sha256 of inspect.getsource(DynamoDBBackend.transact_write_items) in moto 5.2.5.
TRANSACT_WRITE_ITEMS_SHA256 = "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4"

_in_shim: ContextVar[bool] = ContextVar("moto_transaction_shim_active", default=False)
_original: Callable[..., None] | None = None


class MotoVersionError(RuntimeError):
    """The installed moto is not the one the shim was checked against."""


class _CopyKeepingTables:
    """Stands in for the `copy` module inside `moto.dynamodb.models`: inside the shim, tables are not copied."""

    def __init__(self, real: ModuleType, table_type: type) -> None:
        self._real = real
        self._table_type = table_type

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def deepcopy(self, obj: Any, memo: dict[int, Any] | None = None) -> Any:
        if _in_shim.get() and isinstance(obj, self._table_type):
            return obj
        return self._real.deepcopy(obj, memo)


@dataclass
class _ItemSnapshot:
    table: Any  # moto Table
    hash_key: Any  # DynamoType
    range_key: Any  # DynamoType | None
    partition_existed: bool
    old: Any  # a deep copy of the Item, or None if absent


@dataclass
class _StreamSnapshot:
    shard: Any  # moto StreamShard
    records: list[Any]
    length: int


def _locate(backend: Any, entry: Any) -> tuple[Any, Any, Any] | None:
    """(table, hash key, range key) of the item a transact item writes or checks, as moto computes it; None if it
    cannot be computed, in which case moto cannot store anything for it either."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        ((op_type, op),) = entry.items()
        table = backend.get_table(op["TableName"])
        source = op["Item"] if op_type == "Put" else op["Key"]
        hash_key = DynamoType(source[table.hash_key_attr])
        range_key = DynamoType(source[table.range_key_attr]) if table.range_key_attr is not None else None
        hash((hash_key, range_key))  # a key of a map or list type cannot be stored: skip it
    except Exception:
        return None
    return table, hash_key, range_key


def _snapshot(backend: Any, transact_items: list[dict[str, Any]]) -> tuple[list[_ItemSnapshot], list[_StreamSnapshot]]:
    """The state a rollback must bring back, read without side effects (moto's `get_item` adds empty partitions)."""
    items: list[_ItemSnapshot] = []
    streams: dict[int, _StreamSnapshot] = {}
    seen: set[tuple[int, Any, Any]] = set()
    for entry in transact_items:
        located = _locate(backend, entry)
        if located is None:
            continue
        table, hash_key, range_key = located
        if (id(table), hash_key, range_key) in seen:
            continue
        seen.add((id(table), hash_key, range_key))
        partition = table.items.get(hash_key)
        current = partition if table.range_key_attr is None else (partition or {}).get(range_key)
        items.append(_ItemSnapshot(table, hash_key, range_key, partition is not None, copy.deepcopy(current)))
        shard = table.stream_shard
        if shard is not None and id(table) not in streams:
            streams[id(table)] = _StreamSnapshot(shard, shard.items, len(shard.items))
    return items, list(streams.values())


def _restore(items: list[_ItemSnapshot], streams: list[_StreamSnapshot]) -> None:
    """Put every snapshotted item back as it was, then the partitions and stream records."""
    for snap in items:
        table = snap.table
        if table.range_key_attr is None:
            if snap.old is None:
                table.items.pop(snap.hash_key, None)
            else:
                table.items[snap.hash_key] = snap.old
        elif snap.old is None:
            partition = table.items.get(snap.hash_key)
            if partition is not None:
                partition.pop(snap.range_key, None)
        else:
            table.items[snap.hash_key][snap.range_key] = snap.old
    for snap in items:  # after all items: a partition may hold several items of this transaction
        created = snap.table.range_key_attr is not None and not snap.partition_existed
        if created and snap.table.items.get(snap.hash_key) == {}:
            del snap.table.items[snap.hash_key]
    for stream in streams:
        # StreamShard.add appends to this list, or replaces it with [] after handing records to Lambda.
        del stream.records[stream.length :]
        stream.shard.items = stream.records


def _shimmed_transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's transact_write_items, rolled back by touched item instead of by whole-table copies."""
    assert _original is not None
    if len(transact_items) > 100:  # moto refuses it before touching anything
        return _original(self, transact_items)
    items, streams = _snapshot(self, transact_items)
    token = _in_shim.set(True)
    try:
        _original(self, transact_items)
    except BaseException:
        _restore(items, streams)
        raise
    finally:
        _in_shim.reset(token)


def _check_moto() -> tuple[Any, ModuleType]:
    import moto
    import moto.dynamodb.models as models

    if moto.__version__ != MOTO_VERSION:
        raise MotoVersionError(
            f"infra/local/moto_patches.py was checked against moto {MOTO_VERSION}, found {moto.__version__}: "
            "re-read DynamoDBBackend.transact_write_items (is the whole-table deepcopy still there?), "
            "update the shim and its pins, and run tests/e2e/test_moto_transaction_shim.py"
        )
    source = inspect.getsource(models.DynamoDBBackend.transact_write_items)
    digest = hashlib.sha256(source.encode()).hexdigest()
    if digest != TRANSACT_WRITE_ITEMS_SHA256:
        raise MotoVersionError(f"moto's DynamoDBBackend.transact_write_items is not the 5.2.5 source (sha256 {digest})")
    if vars(models)["copy"] is not copy:
        raise MotoVersionError("moto.dynamodb.models.copy is not the copy module: something else patched it")
    return models.DynamoDBBackend, models


def is_transaction_shim_installed() -> bool:
    from moto.dynamodb.models import DynamoDBBackend

    return DynamoDBBackend.transact_write_items is _shimmed_transact_write_items


def install_transaction_shim() -> None:
    """Make moto's TransactWriteItems cost O(items in the request), not O(table size). Idempotent; process-wide."""
    global _original
    if is_transaction_shim_installed():
        return
    backend_type, models = _check_moto()
    from moto.dynamodb.models.table import Table

    _original = backend_type.transact_write_items
    setattr(models, "copy", _CopyKeepingTables(copy, Table))  # noqa: B010 (a module global moto reads by name)
    backend_type.transact_write_items = _shimmed_transact_write_items


def uninstall_transaction_shim() -> None:
    """Back to moto's own implementation (tests compare both). Idempotent."""
    if not is_transaction_shim_installed():
        return
    import moto.dynamodb.models as models

    assert _original is not None
    models.DynamoDBBackend.transact_write_items = _original  # type: ignore[method-assign]
    setattr(models, "copy", copy)  # noqa: B010 (a module global moto reads by name)


# --- SQS: SendMessage in O(1) -------------------------------------------------------------------

_in_send: ContextVar[bool] = ContextVar("moto_sqs_send_fix_active", default=False)
_original_send: Callable[..., Any] | None = None
_original_attributes: property | None = None
SEND_MESSAGE_NEEDLE = 'queue.attributes.get("ContentBasedDeduplication") == "true"'


def _cheap_attributes(self: Any) -> dict[str, Any]:
    """Inside SendMessage, the one attribute moto reads there; everywhere else moto's full (O(n)) property."""
    if _in_send.get():
        return {"ContentBasedDeduplication": str(bool(getattr(self, "content_based_deduplication", False))).lower()}
    assert _original_attributes is not None and _original_attributes.fget is not None
    return dict(_original_attributes.fget(self))


def _fixed_send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
    assert _original_send is not None
    token = _in_send.set(True)
    try:
        return _original_send(self, *args, **kwargs)
    finally:
        _in_send.reset(token)


def _check_source(fix: str, function: Callable[..., Any], needle: str, problem: str) -> None:
    """Refuse to patch a moto other than the one `fix` was checked against, or whose code moved."""
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise MotoVersionError(f"{fix} was checked against moto {MOTO_VERSION}, found {moto.__version__}")
    if needle not in inspect.getsource(function):
        raise MotoVersionError(problem)


def is_sqs_send_fix_installed() -> bool:
    from moto.sqs.models import SQSBackend

    return SQSBackend.send_message is _fixed_send_message


def install_sqs_send_fix() -> None:
    """Make moto's SendMessage(Batch) cost O(1), not O(messages in the queue). Idempotent; process-wide.

    moto 5.2.5's `SQSBackend.send_message` reads `queue.attributes` (twice for a
    FIFO queue) only for `ContentBasedDeduplication`, and that property computes
    the approximate message counts with a clock call per message in the queue:
    a send took 60 ms at 500 queued messages and 560 ms at 3,000, so a local
    10,000-recipient campaign never finished. While SendMessage runs, the
    property answers just that one key from the queue's own field; every other
    reader (GetQueueAttributes, receive) gets moto's full dict.
    """
    global _original_send, _original_attributes
    if is_sqs_send_fix_installed():
        return
    from moto.sqs.models import Queue, SQSBackend

    _check_source("the SQS send fix", SQSBackend.send_message, SEND_MESSAGE_NEEDLE,
                  "moto's SQSBackend.send_message no longer reads queue.attributes: re-check the fix")
    _original_send = SQSBackend.send_message
    _original_attributes = Queue.attributes  # type: ignore[assignment]
    Queue.attributes = property(_cheap_attributes)  # type: ignore[assignment,method-assign]
    SQSBackend.send_message = _fixed_send_message  # type: ignore[method-assign]


def uninstall_sqs_send_fix() -> None:
    if not is_sqs_send_fix_installed():
        return
    from moto.sqs.models import Queue, SQSBackend

    SQSBackend.send_message = _original_send  # type: ignore[method-assign,assignment]
    Queue.attributes = _original_attributes  # type: ignore[assignment,method-assign]


# --- DynamoDB: Query reads its partition, not the whole table --------------------------------

_original_query: Callable[..., Any] | None = None
_generation = 0
"""Bumped by every DynamoDB write the local server sees; index partitions built before it are stale."""
_index_partitions: dict[tuple[int, str, str], tuple[int, dict[Any, list[Any]]]] = {}
QUERY_NEEDLE = "for item in self.all_items():"


def note_write() -> None:
    """Something may have changed a table: forget every cached index partition."""
    global _generation
    _generation += 1
    _index_partitions.clear()


def _index_hash_attribute(table: Any, index_name: str) -> str | None:
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    hashes = [key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH"] if index else []
    return hashes[0] if len(hashes) == 1 else None


def _candidates(table: Any, hash_key: Any, index_name: str | None, conditions: list[Any] | None) -> list[Any] | None:
    """The items a Query can return, unsorted (moto sorts what it keeps); None when unsure (moto's own walk)."""
    if not index_name:
        if hash_key is None or hash_key not in table.items:
            return [] if hash_key is not None else None
        partition = table.items[hash_key]
        return list(partition.values()) if table.range_key_attr else [partition]
    attribute = _index_hash_attribute(table, index_name)
    if attribute is None or not conditions or len(conditions) != 1 or conditions[0][0] != attribute:
        return None
    cache_key = (id(table), table.name, index_name)
    cached = _index_partitions.get(cache_key)
    if cached is None or cached[0] != _generation:
        groups: dict[Any, list[Any]] = {}
        for partition in table.items.values():
            for item in (partition.values() if table.range_key_attr else [partition]):
                value = item.attrs.get(attribute)
                if value is not None:
                    groups.setdefault(value, []).append(item)
        cached = _index_partitions[cache_key] = (_generation, groups)
    return cached[1].get(conditions[0][1], [])


def _fast_query(self: Any, hash_key: Any, range_comparison: Any, range_objs: Any, limit: Any,
                exclusive_start_key: Any, scan_index_forward: Any, projection_expressions: Any,
                index_name: str | None = None, *args: Any, **kwargs: Any) -> Any:
    assert _original_query is not None
    subset = _candidates(self, hash_key, index_name, kwargs.get("hash_key_conditions"))
    if subset is not None:
        self.all_items = lambda: subset
    try:
        return _original_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                               scan_index_forward, projection_expressions, index_name, *args, **kwargs)
    finally:
        if subset is not None:
            del self.all_items


def is_query_fix_installed() -> bool:
    from moto.dynamodb.models.table import Table

    return Table.query is _fast_query


def install_query_fix() -> None:
    """Make moto's Query cost O(partition), not O(table log table). Idempotent; process-wide.

    moto 5.2.5's `Table.query` takes `self.all_items()` (every item of the table,
    sorted by key with Python-level comparisons) and then filters it by the key
    condition, for every page: at 100,000 items one Query took about a second,
    so a 200,000-entry ledger export never finished locally. Here a Query on the
    table gets only its partition's items, and one on an index with a single hash
    key gets that index partition's items; moto's own code then filters, sorts,
    pages and projects them exactly as before, so results and paging are moto's.

    Index partitions are grouped once and reused until the next DynamoDB write:
    the local server's middleware calls `note_write()` for every request that is
    not a read. Only for that server (one lock around every request): in-process
    `mock_aws()` tests do not install it.
    """
    global _original_query
    if is_query_fix_installed():
        return
    from moto.dynamodb.models.table import Table

    _check_source("the query fix", Table.query, QUERY_NEEDLE,
                  "moto's Table.query no longer walks all_items(): re-check the query fix")
    _original_query = Table.query
    Table.query = _fast_query  # type: ignore[method-assign]
    note_write()


def uninstall_query_fix() -> None:
    if not is_query_fix_installed():
        return
    from moto.dynamodb.models.table import Table

    Table.query = _original_query  # type: ignore[method-assign,assignment]
    note_write()
