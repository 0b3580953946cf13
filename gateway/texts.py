"""Texts the core and the connectors store for people to read (a receipt's detail, an error):
written from the dashboard's one catalogue (:mod:`gateway.web.admin.i18n`) in both languages.

The catalogue module is imported when a text is written, not when this module is: the web
package imports the connectors, so an import at the top would be circular.
"""

from __future__ import annotations

from typing import Any


def both(key: str, /, detail: str | None = None, **fields: Any) -> str:
    """``"vi / en"`` from the catalogue's ``key``, then ``": detail"`` (see i18n.both)."""
    from gateway.web.admin import i18n

    return i18n.both(key, detail, **fields)
