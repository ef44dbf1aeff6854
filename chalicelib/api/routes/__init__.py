"""Route modules, one per area. Importing this package declares every route."""

from chalicelib.api.routes import (  # noqa: F401
    agency,
    campaigns,
    card_series,
    coalitions,
    coupons,
    customers,
    expiry,
    gift_cards,
    imports,
    keys,
    mail,
    meta,
    platform,
    pos,
    segments,
    support,
    surveys,
    templates,
    tenant,
)
