"""Page modules, one per area of the console. Importing this package declares every page."""

from chalicelib.console.routes import auth, home  # noqa: F401
