"""Who may do what: API tokens, dashboard sessions, CSRF, and the access policy of routes.

* Tokens come from ``[[tokens]]`` (``token_sha256``, or ``token`` hashed at load). A presented
  token is hashed and compared with every configured digest in constant time.
* The admin API takes ``Authorization: Bearer <token>``; the dashboard signs in with a token
  into a session cookie (HMAC-signed, HttpOnly, SameSite=Strict) carrying a CSRF token that
  every form POST must echo in its ``csrf`` field.
* Every route has an access level (``public``, ``viewer``, ``operator``, ``admin``) declared
  with :func:`protect`; a route without one (a plugin forgot) is admin-only: fail closed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast
from urllib.parse import quote

from aiohttp import web

from gateway.config import Config, ConfigError
from gateway.log import get_logger
from gateway.web.admin.pages import client_address
from gateway.web.admin.roles import ROLES, Role, allows
from gateway.web.errors import ApiError, error_response
from gateway.web.keys import ADMIN_METRICS, AUTH, PRINCIPAL, STORE, admin_need

if TYPE_CHECKING:
    from gateway.store import Store

log = get_logger("gateway.admin.auth")

Access = Literal["public", "viewer", "operator", "admin"]
SESSION_COOKIE = "gw_session"
SIGNIN_COOKIE = "gw_signin"
SESSION_SECONDS = 8 * 3600  # one working day
SIGNIN_SECONDS = 3600  # a sign-in form is good for an hour, and for one attempt
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Principal:
    """The token holder behind a request, and how they came in (``api`` or ``web``)."""

    name: str
    role: Role
    via: Literal["api", "web"]
    csrf: str = ""
    sid: str = ""
    #: when the session cookie expires (epoch seconds; 0 for API tokens)
    expires: float = 0.0

    @property
    def actor(self) -> str:
        """How the audit and delivery logs name them, e.g. ``web:ops``."""
        return f"{self.via}:{self.name}"

    def can(self, needed: Role) -> bool:
        return allows(self.role, needed)


@dataclass(frozen=True, slots=True)
class TokenEntry:
    name: str
    role: Role
    digest: bytes


class TokenTable:
    """The configured tokens, by the SHA-256 of their value."""

    def __init__(self, config: Config) -> None:
        self.entries: list[TokenEntry] = []
        seen: set[str] = set()
        for i, tok in enumerate(config.tokens):
            where = f"tokens[{i}]"
            if tok.name in seen:
                raise ConfigError(
                    config.path, f"{where}.name", f"token name {tok.name!r} is used twice"
                )
            seen.add(tok.name)
            if (tok.token_sha256 is None) == (tok.token is None):
                raise ConfigError(config.path, where, "give exactly one of token_sha256 or token")
            if tok.token is not None:
                value = tok.token.get_secret_value()
                if len(value) < 16:
                    raise ConfigError(
                        config.path, f"{where}.token", "must be at least 16 characters"
                    )
                digest = hashlib.sha256(value.encode()).digest()
            else:
                hexdigest = (tok.token_sha256 or "").strip().lower()
                if not _HEX64.fullmatch(hexdigest):
                    raise ConfigError(
                        config.path,
                        f"{where}.token_sha256",
                        "must be 64 hex digits (sha256 of the token)",
                    )
                digest = bytes.fromhex(hexdigest)
            self.entries.append(TokenEntry(tok.name, tok.role, digest))

    def match(self, presented: str) -> TokenEntry | None:
        """The entry whose token this is; every digest is compared (no early exit)."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found: TokenEntry | None = None
        for entry in self.entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry
        return found

    def by_name(self, name: str) -> TokenEntry | None:
        return next((e for e in self.entries if e.name == name), None)


def same(presented: str, expected: str) -> bool:
    """Constant-time comparison of a presented credential, whatever characters it holds
    (``hmac.compare_digest`` raises on non-ASCII ``str``: a 500 instead of a refusal)."""
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FailureThrottle:
    """Failed authentication per client address: :data:`allowed` failures at once, then one
    more every :data:`refill` seconds; an address over it waits (429 with ``Retry-After``)
    before its next bearer token or sign-in is even looked at."""

    def __init__(self, allowed: int = 10, refill: float = 6.0, tracked: int = 10_000) -> None:
        self.allowed, self.refill, self.tracked = allowed, refill, tracked
        self._spent: dict[str, tuple[float, float]] = {}  # address -> (failures owed, at)

    def _owed(self, address: str, now: float) -> float:
        owed, at = self._spent.get(address, (0.0, now))
        return max(0.0, owed - (now - at) / self.refill)

    def wait(self, address: str, now: float | None = None) -> int:
        """Seconds ``address`` must wait before its next attempt (0: it may try now)."""
        now = time.monotonic() if now is None else now
        over = self._owed(address, now) - (self.allowed - 1)
        return 0 if over <= 0 else max(1, math.ceil(over * self.refill))

    def failed(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if address not in self._spent and len(self._spent) >= self.tracked:
            self._spent = {a: v for a, v in self._spent.items() if self._owed(a, now) > 0}
            while len(self._spent) >= self.tracked:  # the oldest go first
                del self._spent[next(iter(self._spent))]
        self._spent[address] = (self._owed(address, now) + 1, now)


class Auth:
    """Tokens, the session signing key, revoked sessions and the routes' access levels."""

    def __init__(self, config: Config) -> None:
        self.tokens = TokenTable(config)
        configured = config.gateway.session_secret
        self.secret = (
            configured.get_secret_value().encode()
            if configured is not None
            else secrets.token_bytes(32)
        )
        self.policy: dict[str, dict[str, Access]] = {}
        self._revoked: dict[str, float] = {}
        self.throttle = FailureThrottle()
        self._used_nonces: dict[str, float] = {}

    # -- signing ---------------------------------------------------------------------------
    def _sign(self, purpose: str, data: str) -> str:
        text = f"{purpose}:{data}".encode("utf-8", "surrogatepass")  # a cookie may hold anything
        return _b64(hmac.new(self.secret, text, hashlib.sha256).digest())

    def _fingerprint(self, entry: TokenEntry) -> str:
        """Changes when the token changes, so a rotated token ends its sessions."""
        return self._sign("token", entry.digest.hex())[:16]

    # -- sessions --------------------------------------------------------------------------
    def issue(self, entry: TokenEntry, now: float | None = None) -> str:
        """A session cookie value for a token holder who signed in."""
        now = time.time() if now is None else now
        body = {
            "n": entry.name,
            "f": self._fingerprint(entry),
            "c": secrets.token_urlsafe(24),
            "s": secrets.token_urlsafe(12),
            "e": int(now + SESSION_SECONDS),
        }
        data = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{data}.{self._sign('session', data)}"

    def read(self, cookie: str | None, now: float | None = None) -> Principal | None:
        """The session's principal, or None (bad signature, expired, revoked, token gone)."""
        if not cookie or cookie.count(".") != 1:
            return None
        data, sig = cookie.split(".")
        if not same(sig, self._sign("session", data)):
            return None
        try:
            body = json.loads(_unb64(data))
            name, fp, csrf, sid, exp = body["n"], body["f"], body["c"], body["s"], int(body["e"])
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time() if now is None else now
        entry = self.tokens.by_name(str(name))
        if exp < now or sid in self._revoked or entry is None or fp != self._fingerprint(entry):
            return None
        return Principal(
            entry.name, entry.role, "web", csrf=str(csrf), sid=str(sid), expires=float(exp)
        )

    async def read_live(self, cookie: str | None, store: Store | None) -> Principal | None:
        """:meth:`read`, and not signed out on any node (the store keeps sign-outs, so a
        signed-out cookie stays refused after a restart and on every other node)."""
        who = self.read(cookie)
        if who is None or store is None:
            return who
        if await store.session_revoked(who.sid):
            self._revoked[who.sid] = who.expires
            return None
        return who

    def revoke(self, principal: Principal, now: float | None = None) -> None:
        """Sign-out in this process (see :meth:`revoke_everywhere`)."""
        now = time.time() if now is None else now
        self._revoked = {sid: exp for sid, exp in self._revoked.items() if exp > now}
        self._revoked[principal.sid] = principal.expires or now + SESSION_SECONDS

    async def revoke_everywhere(self, principal: Principal, store: Store) -> None:
        """Sign-out: the cookie is dropped by the browser and refused until it expires, by
        this node at once and by every node from the store, across restarts."""
        self.revoke(principal)
        expires = principal.expires or time.time() + SESSION_SECONDS
        await store.revoke_session(principal.sid, expires, principal.actor)

    def signin_nonce(self, now: float | None = None) -> tuple[str, str]:
        """(form field value, cookie value) of the sign-in form's CSRF token: good for one
        sign-in attempt within :data:`SIGNIN_SECONDS`."""
        now = time.time() if now is None else now
        nonce = f"{int(now)}x{secrets.token_hex(16)}"
        return nonce, f"{nonce}.{self._sign('signin', nonce)}"

    def signin_expected(self, cookie: str | None, now: float | None = None) -> str | None:
        """The nonce the sign-in cookie carries, if it is ours, fresh and not used yet."""
        if not cookie or cookie.count(".") != 1:
            return None
        nonce, sig = cookie.split(".")
        if not same(sig, self._sign("signin", nonce)):
            return None
        now = time.time() if now is None else now
        issued = nonce.partition("x")[0]
        if not issued.isdigit() or not 0 <= now - int(issued) <= SIGNIN_SECONDS:
            return None
        return None if nonce in self._used_nonces else nonce

    def use_nonce(self, nonce: str, now: float | None = None) -> None:
        """A sign-in attempt was made with ``nonce``: it never works again (kept as long as
        it would be fresh)."""
        now = time.time() if now is None else now
        if len(self._used_nonces) > 100_000:
            self._used_nonces = {n: t for n, t in self._used_nonces.items() if t > now}
        self._used_nonces[nonce] = now + SIGNIN_SECONDS

    # -- access policy -----------------------------------------------------------------------
    def access(self, canonical: str, method: str) -> Access | None:
        methods = self.policy.get(canonical, {})
        if method == "HEAD" and "HEAD" not in methods:
            method = "GET"
        return methods.get(method) or methods.get("*")


def protect(app: web.Application, path: str, access: Access, method: str = "*") -> None:
    """Declare who may call ``method`` on the route ``path`` (as written when it was added)."""
    if access != "public" and access not in ROLES:
        raise ValueError(f"access must be public or one of {ROLES}, not {access!r}")
    admin_need(app, AUTH).policy.setdefault(path, {})[method.upper()] = access


def principal(request: web.Request) -> Principal:
    """The signed-in token holder (only on protected routes)."""
    try:
        return request[PRINCIPAL]
    except KeyError:
        raise RuntimeError("no principal: this route is public (see protect())") from None


def bearer_token(request: web.Request) -> str | None:
    """The token of a well-formed ``Authorization: Bearer <token>`` header, else None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip() or len(value) > 1024:
        return None
    return value.strip()


def bearer_principal(request: web.Request, auth: Auth) -> Principal | None:
    token = bearer_token(request)
    entry = None if token is None else auth.tokens.match(token)
    return None if entry is None else Principal(entry.name, entry.role, "api")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_api(path: str) -> bool:
    return path.startswith("/api/")


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    if resource is None or request.match_info.http_exception is not None:
        return await handler(request)  # 404 / 405: nothing to protect
    auth = admin_need(request.app, AUTH)
    access = auth.access(resource.canonical, request.method) or "admin"  # fail closed
    api = is_api(resource.canonical)
    who: Principal | None = None
    if access != "public":
        if api and bearer_token(request) is not None:  # a token to check: throttled
            address = client_address(request)
            wait = auth.throttle.wait(address)
            if wait:
                _count_refusal(request, "throttled")
                raise ApiError(
                    429,
                    "too_many_failures",
                    f"too many failed authentications from this address; retry in {wait} s",
                    retry_after=wait,
                )
            who = bearer_principal(request, auth)
            if who is None:
                auth.throttle.failed(address)
        elif api:
            who = None
        else:
            who = await auth.read_live(request.cookies.get(SESSION_COOKIE), request.app.get(STORE))
        if who is None:
            _count_refusal(request, "unauthenticated")
            return await _unauthenticated(request, api)
        request[PRINCIPAL] = who
    signed_push = resource.canonical.startswith("/inbound/")  # HMAC-authenticated, no session
    if (
        not (api or signed_push)
        and request.method == "POST"
        and not await _csrf_ok(request, auth, who)
    ):
        _count_refusal(request, "csrf")
        return await _page_refusal(request, "csrf_title", "csrf_text", {})
    if who is not None and not who.can(cast(Role, access)):
        _count_refusal(request, "forbidden")
        if api:
            raise ApiError(
                403, "forbidden", f"the {who.role} role may not do this; {access} is needed"
            )
        return await _page_refusal(request, "forbidden_title", "forbidden_text", {"role": who.role})
    return await handler(request)


async def _csrf_ok(request: web.Request, auth: Auth, who: Principal | None) -> bool:
    try:
        form = await request.post()
    except ValueError:  # a body that is not UTF-8 (UnicodeDecodeError) or not a form
        return False
    sent = form.get("csrf")
    if who is not None:
        return isinstance(sent, str) and bool(who.csrf) and same(sent, who.csrf)
    expected = auth.signin_expected(request.cookies.get(SIGNIN_COOKIE))
    if not (isinstance(sent, str) and expected and same(sent, expected)):
        return False
    auth.use_nonce(expected)  # one attempt per sign-in form
    return True


def _count_refusal(request: web.Request, reason: str) -> None:
    metrics = request.app.get(ADMIN_METRICS)
    if metrics is not None:
        metrics.auth_refusals.labels(reason).inc()


async def _unauthenticated(request: web.Request, api: bool) -> web.StreamResponse:
    if api:
        response = error_response(
            401, "unauthorized", "send Authorization: Bearer <token> (a [[tokens]] token)"
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="gateway"'
        return response
    if request.method in ("GET", "HEAD"):
        raise web.HTTPSeeOther(f"/signin?next={quote(request.path_qs, safe='')}")
    return await _page_refusal(request, "forbidden_title", "signin_first", {})


async def _page_refusal(
    request: web.Request, title: str, text: str, fields: dict[str, str]
) -> web.Response:
    from gateway.web.admin.pages import render_message

    return await render_message(request, title, text, fields, status=403)
