"""motcua-gateway: a plugin-based async integration gateway.

Plugins implement hooks marked with :data:`hookimpl`; the contract is
:mod:`gateway.hookspecs`.
"""

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "gateway"
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]
