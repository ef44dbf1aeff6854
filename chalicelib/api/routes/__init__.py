"""Route modules, one per area. Importing this package declares every route."""

from chalicelib.api.routes import agency, card_series, keys, meta, platform, pos, tenant  # noqa: F401
