"""Page modules, one per area of the console. Importing this package declares every page (each module here)."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
