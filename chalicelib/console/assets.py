"""The console's static files, served by us under content-hashed names: cached for a year, never stale.

`url("console.css")` is `/console/static/console.<hash>.css`; a changed file
gets a new name, so browsers and CloudFront may keep every version forever.
Only the files listed here are served (no path from the request ever reaches
the file system).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

STATIC = Path(__file__).parent / "static"
PREFIX = "/console/static/"
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".svg": "image/svg+xml", ".txt": "text/plain; charset=utf-8"}
FILES = ("console.css", "member.css", "console.js", "htmx-2.0.11.min.js", "htmx-2.0.11.LICENSE.txt")
IMMUTABLE = "public, max-age=31536000, immutable"


@functools.cache
def _table() -> dict[str, tuple[str, bytes, str]]:
    """Hashed name -> (logical name, content, content type), read once per process."""
    table = {}
    for name in FILES:
        content = (STATIC / name).read_bytes()
        stem, dot, suffix = name.rpartition(".")
        digest = hashlib.sha256(content).hexdigest()[:12]
        table[f"{stem}.{digest}{dot}{suffix}"] = (name, content, TYPES[f".{suffix}"])
    return table


@functools.cache
def url(name: str) -> str:
    """The versioned URL of a static file."""
    for hashed, (logical, _, _) in _table().items():
        if logical == name:
            return PREFIX + hashed
    raise KeyError(name)


def find(hashed: str) -> tuple[bytes, str] | None:
    """(content, content type) of a versioned name, or None."""
    hit = _table().get(hashed)
    return (hit[1], hit[2]) if hit else None
