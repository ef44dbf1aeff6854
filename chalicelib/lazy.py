"""Modules imported by the first request that uses them, not by the route or page tables.

Every cold start of the API function imports every route and page module
(Chalice needs the whole table), but one request uses one service; importing
them all up front (PynamoDB models, Jinja2, Babel, XlsxWriter, ...) tripled
the cold start (bench/cold_start.py).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A service or storage module imported by the first request that uses it, not by the route table.

    Every cold start of the API function imports every route module (Chalice
    needs the whole route table), but one request uses one service; importing
    them all up front (PynamoDB models, Jinja2, XlsxWriter, ...) tripled the
    cold start (bench/cold_start.py). Each attribute read goes to the real
    module, so a function replaced on it (a test's monkeypatch) is seen.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.module(), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


def lazy_module(name: str) -> Any:
    """`name` (a dotted module path), imported on first attribute access."""
    return LazyModule(name)
