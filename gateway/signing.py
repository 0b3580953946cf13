"""HMAC signatures of inbound pushes (FORMATS.md §1.1).

``X-Timestamp: <unix seconds>`` and ``X-Signature: sha256=<hex HMAC-SHA256 of
timestamp + "." + raw body>`` with the system's shared secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping


class SignatureError(Exception):
    """Why a request's signature was refused (readable; carries no secret)."""


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers that sign ``body`` now (or at ``timestamp``)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Timestamp": ts, "X-Signature": f"sha256={mac}"}


def verify(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    max_skew: int = 300,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless the headers sign ``body`` within ``max_skew``."""
    ts, mac = check_headers(headers, max_skew=max_skew, now=now)
    check_body(secret, body, ts, mac)


def check_headers(
    headers: Mapping[str, str], *, max_skew: int = 300, now: float | None = None
) -> tuple[str, str]:
    """What can be checked before the body is read: both headers present and well-formed,
    the timestamp within ``max_skew``. Returns (timestamp, hex signature)."""
    ts = headers.get("X-Timestamp", "")
    sig = headers.get("X-Signature", "")
    if not ts or not sig:
        raise SignatureError("missing X-Timestamp or X-Signature header")
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 12):
        raise SignatureError("X-Timestamp must be unix seconds")
    current = time.time() if now is None else now
    if abs(current - int(ts)) > max_skew:
        raise SignatureError(f"X-Timestamp is more than {max_skew} s away from the gateway clock")
    if not (sig.startswith("sha256=") and sig.isascii() and len(sig) <= 7 + 128):
        raise SignatureError("X-Signature must be sha256=<hex>")
    return ts, sig[7:]


def check_body(secret: str, body: bytes, ts: str, mac: str) -> None:
    """The HMAC of ``ts.body`` must be ``mac`` (ASCII, from :func:`check_headers`)."""
    expected = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, mac):
        raise SignatureError("signature does not match the body")
