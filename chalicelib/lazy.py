"""Modules imported by the first request that uses them, not by the route or page tables.

Every cold start of the API function imports every route and page module
(Chalice needs the whole table), but one request uses one service; importing
them all up front (PynamoDB models, Jinja2, Babel, XlsxWriter, ...) tripled
the cold start (bench/cold_start.py).
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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
        value = getattr(self.module(), attr)
        if _service_time.get() is None or not callable(value) or isinstance(value, type):
            return value
        return _timed(value)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


_service_time: ContextVar[list[float] | None] = ContextVar("service_time", default=None)
"""While a console page is served: the seconds its calls into services took (Server-Timing)."""


@contextmanager
def timing_services() -> Iterator[list[float]]:
    """Time every call made through a lazy module in this context; the list holds their total in seconds."""
    total = [0.0]
    token = _service_time.set(total)
    try:
        yield total
    finally:
        _service_time.reset(token)


def timed_call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `function`, adding its time to the current page's service time (if one is being timed)."""
    total = _service_time.get()
    started = time.perf_counter()
    try:
        return function(*args, **kwargs)
    finally:
        if total is not None:
            total[0] += time.perf_counter() - started


def _timed(function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        return timed_call(function, *args, **kwargs)

    return call


def lazy_module(name: str) -> Any:
    """`name` (a dotted module path), imported on first attribute access."""
    return LazyModule(name)
