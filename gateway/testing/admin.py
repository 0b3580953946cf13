"""Test kit for the admin API and dashboard: tokens for a test config, signing a test client
in, reading a page's CSRF token. For the gateway's tests and for plugins that add pages."""

from __future__ import annotations

import hashlib
import re
from typing import Any

#: One token per role; names are what the audit log records (``api:ops``, ``web:ops``).
TOKENS: dict[str, tuple[str, str]] = {
    "viewer": ("clerk", "viewer-token-0123456789abcdef"),
    "operator": ("ops", "operator-token-0123456789abcdef"),
    "admin": ("chief", "admin-token-0123456789abcdef0"),
}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def token_config() -> list[dict[str, Any]]:
    """``[[tokens]]`` entries for :data:`TOKENS` (stored as SHA-256, as in production)."""
    return [
        {"name": name, "role": role, "token_sha256": hashlib.sha256(token.encode()).hexdigest()}
        for role, (name, token) in TOKENS.items()
    ]


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role][1]}"}


def csrf_from(html: str) -> str:
    """The first CSRF token in a page's forms."""
    found = _CSRF.search(html)
    if found is None:
        raise AssertionError("the page has no csrf field")
    return found.group(1)


async def sign_in(client: Any, role: str) -> str:
    """Sign an aiohttp test client in through the form; returns the session's CSRF token."""
    page = await client.get("/signin")
    nonce = csrf_from(await page.text())
    resp = await client.post(
        "/signin",
        data={"csrf": nonce, "token": TOKENS[role][1], "next": "/"},
        allow_redirects=False,
    )
    if resp.status != 303:
        raise AssertionError(f"sign-in as {role} answered {resp.status}")
    home = await client.get("/dead")
    return csrf_from(await home.text())
