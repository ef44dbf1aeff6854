"""Coupon codes, their use counters and grant markers (the `loyalty` table); campaigns are `schemas.coupons.Campaign`.

<tid>#coupon#<CODE>              / coupon  a code: its campaign and uses so far
<tid>#coupon-use#<cid>#<holder>  / use     one customer's (or card's) uses of a campaign
<tid>#coupon-grant#<key>         / grant   the code one grant key minted (exactly once)
<scope>#customer#<id>            / coupon#<tid>#<time>#<key hash>  a code given to the customer (exactly once per key)
"""

from __future__ import annotations

from chalicelib.storage.documents.common import Document


class CouponCode(Document):
    """A code and how many times it was used."""

    campaign_id: str
    uses: int = 0


class CustomerUses(Document):
    """How many times one holder used a campaign (a holder who never did reads as 0 at version 0)."""

    uses: int = 0


class CouponGrant(Document):
    """The code a grant (say, a survey reward) minted for one holder."""

    code: str
    campaign_id: str
    holder: str


class CouponGiven(Document):
    """One code given to one customer, as the member site lists it: which tenant's campaign, where it came from."""

    tenant_id: str
    campaign_id: str
    code: str
    source: str
    """"campaign" (a mail campaign), "trigger" (an automatic message, say the birthday one), "survey", "other"."""
    origin: str | None = None
    """The mail campaign, trigger kind or questionnaire that gave it."""
    given_at: str
