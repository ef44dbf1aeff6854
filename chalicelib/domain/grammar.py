"""English for messages built from values; defined in schemas/grammar.py, which the schemas' validators use too."""

from __future__ import annotations

from chalicelib.schemas.grammar import article as article
