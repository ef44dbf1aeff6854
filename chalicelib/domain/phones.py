"""Phone numbers in E.164, as the rules use them; defined in schemas/phones.py, which the `Phone` type uses too."""

from __future__ import annotations

from chalicelib.schemas.phones import DEFAULT_REGION as DEFAULT_REGION
from chalicelib.schemas.phones import normalise as normalise
