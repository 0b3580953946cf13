"""The dashboard's navigation: a list of entries under :data:`~gateway.web.keys.NAV`.

A plugin adds a page in its ``gateway_web_routes`` hook::

    app.router.add_get("/payments", payments_page)
    protect(app, "/payments", "viewer")
    app[NAV].append(NavEntry("/payments", {"vi": "Chi trả", "en": "Payments"}))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.web.admin.roles import Role, allows


@dataclass(frozen=True, slots=True)
class NavEntry:
    """One link of the navigation bar, shown to ``role`` and above."""

    path: str
    labels: Mapping[str, str]
    role: Role = "viewer"

    def label(self, lang: str) -> str:
        return self.labels.get(lang) or self.labels.get("vi") or self.path

    def visible_to(self, role: Role) -> bool:
        return allows(role, self.role)

    def active(self, path: str) -> bool:
        return path == self.path or (
            self.path != "/" and path.startswith(self.path.rstrip("/") + "/")
        )
