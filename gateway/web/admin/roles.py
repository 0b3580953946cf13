"""Roles of the admin API and dashboard: ``viewer`` < ``operator`` < ``admin``."""

from __future__ import annotations

from typing import Literal

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
_RANK: dict[str, int] = {role: i for i, role in enumerate(ROLES)}


def allows(held: Role, needed: Role) -> bool:
    """Whether a token of role ``held`` may do what needs ``needed``."""
    return _RANK[held] >= _RANK[needed]
