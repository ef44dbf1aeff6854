"""Typed stored documents: one model per kind of item the storage layer reads or writes.

Storage hands services these models (and named results around them), never
bare dicts or `(dict, version)` tuples, so a document's shape is defined once
and every reader sees the same fields.
"""
