"""A card's Apple pass as a short-lived download link: what the member site's "Add to Apple Wallet" follows.

The bytes travel from S3, not through API Gateway (see storage/downloads.py for why);
the link lasts two minutes, enough for the redirect that hands it over.
"""

from __future__ import annotations

from chalicelib.schemas.wallet import PKPASS_TYPE
from chalicelib.services.wallet import apple
from chalicelib.storage import downloads

LINK_SECONDS = 120


def apple_pass_link(tenant_id: str, number: str) -> str:
    """A presigned link to the card's freshly signed `.pkpass`, saved as `<number>.pkpass`."""
    package = apple.for_card(tenant_id, number)
    return downloads.put(tenant_id, f"{number}.pkpass", package.data, PKPASS_TYPE, LINK_SECONDS)
