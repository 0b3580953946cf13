"""The connector contract: one object per configured external system.

A connector plugin registers a *factory* (usually the class itself) under a name with
``gateway_register_connectors(register)``; the core builds one instance per ``[systems.X]``
table whose ``plugin`` names it. Subclass :class:`Connector` and override what the system
needs: ``parse`` for inbound bodies, ``render`` for outbound messages; ``send`` and
``classify_response`` default to plain HTTP semantics.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping
from functools import cached_property
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.config import SystemConfig
from gateway.log import mask_text
from gateway.model import (
    BadRequest,
    GatewayError,
    Message,
    OutboundRequest,
    ParseResult,
    PermanentError,
    Receipt,
    RetryableError,
)
from gateway.texts import both as both  # re-exported: the texts a connector writes


def answer_snippet(body: bytes, limit: int = 300) -> str:
    """The start of an answer body as a person reads it: JSON written again without ``\\u``
    escapes (``chưa được``, not ``ch\\u01b0a``), anything else decoded as UTF-8."""
    try:
        text = json.dumps(json.loads(body), ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        text = body[: limit * 4].decode("utf-8", "replace")
    return text.strip()[:limit]


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form only; dates are ignored)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Connector:
    """Base class of connectors. Class attributes describe the system's wire format."""

    #: content types accepted on ``POST /inbound/{system}`` (lower case, no parameters)
    content_types: ClassVar[tuple[str, ...]] = ("application/json",)
    #: the events this system's messages carry (what ``[[routes]]`` ``event`` can name);
    #: None: not declared (a route's event is then not checked at start-up)
    emits: ClassVar[tuple[str, ...] | None] = None
    #: model of the connector's own keys in ``[systems.X]``; unknown keys are refused
    options_model: ClassVar[type[BaseModel]] = NoOptions

    def __init__(self, system: SystemConfig) -> None:
        self.system = system
        try:
            self.options: Any = self.options_model.model_validate(system.options)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            raise ValueError(f"systems.{system.name}.{key}: {msg}") from None

    @property
    def name(self) -> str:
        return self.system.name

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | bool:
        """TLS for this system: verification on by default, an optional CA bundle and a client
        certificate for mutual TLS. ``False`` only when ``tls.verify = false``."""
        tls = self.system.tls
        if not tls.verify:
            return False
        if not (tls.ca_bundle or tls.client_cert):
            return True
        ctx = ssl.create_default_context(cafile=tls.ca_bundle or None)
        if tls.client_cert:
            ctx.load_cert_chain(tls.client_cert, tls.client_key or None)
        return ctx

    @property
    def client_timeout(self) -> aiohttp.ClientTimeout:
        """Connect and read timeouts of this system (``[systems.X] timeout``)."""
        t = self.system.timeout
        return aiohttp.ClientTimeout(
            sock_connect=t.connect, sock_read=t.read, total=t.connect + t.read
        )

    # -- inbound ---------------------------------------------------------------------------
    async def parse(self, body: bytes, content_type: str) -> ParseResult:
        """Turn an inbound body into messages and per-item rejections.

        Raise :class:`BadRequest` when the body cannot be read at all.
        """
        raise BadRequest(f"system {self.name!r} takes no inbound messages")

    async def poll(
        self, session: aiohttp.ClientSession, cursor: str | None
    ) -> tuple[ParseResult, str | None]:
        """For systems that cannot push: fetch what is new since ``cursor``."""
        raise NotImplementedError

    # -- outbound --------------------------------------------------------------------------
    async def render(self, message: Message) -> OutboundRequest:
        """Convert a message into this system's request. Raise PermanentError when the
        message cannot be expressed in this format (it is dead-lettered with the reason)."""
        raise PermanentError(both("err_not_destination", system=repr(self.name)))

    async def send(self, session: aiohttp.ClientSession, request: OutboundRequest) -> Receipt:
        """Send one request; return a Receipt or raise Retryable/PermanentError."""
        try:
            async with session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=self.client_timeout,
                proxy=self.system.proxy or None,
                ssl=self.ssl_context,
                allow_redirects=False,  # never re-send a document to where a 3xx points
            ) as resp:
                body = await resp.read()
                return self.classify_response(resp.status, body, resp.headers, request)
        except GatewayError:
            raise
        except Exception as exc:
            raise self.classify_exception(exc) from exc

    def classify_response(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        request: OutboundRequest,
    ) -> Receipt:
        """HTTP semantics: 2xx delivered; 408, 429, 5xx retryable; 3xx (never followed) and
        other 4xx permanent (3xx retryable with ``redirects = "retry"``).

        Override to read the system's own answers; ``request.context`` carries what
        ``render`` knew (for example the dossier and its revision)."""
        if 200 <= status < 300:
            return Receipt(status=status, bytes_received=len(body))
        if 300 <= status < 400:
            raise self.redirect_error(status, headers)
        reason = both("ans_http", answer_snippet(body) or None, status=status)
        if status in (408, 429) or status >= 500:
            raise RetryableError(
                reason, status=status, retry_after=parse_retry_after(headers.get("Retry-After"))
            )
        raise PermanentError(reason, status=status)

    def redirect_error(self, status: int, headers: Mapping[str, str]) -> GatewayError:
        """A 3xx answer: not followed, the attempt failed (see ``redirects`` in the config)."""
        location = mask_text(headers.get("Location", "")[:200]) or "(no Location)"
        reason = both("err_redirect", status=status, location=location, system=self.name)
        if self.system.redirects == "retry":
            return RetryableError(reason, status=status)
        return PermanentError(reason, status=status)

    def classify_exception(self, exc: BaseException) -> GatewayError:
        """Transport failures: timeouts, resets and refused connections are retryable."""
        if isinstance(exc, asyncio.TimeoutError | TimeoutError):
            return RetryableError(both("err_timeout", type(exc).__name__))
        if isinstance(exc, aiohttp.ClientError | OSError):
            return RetryableError(both("err_connection", f"{type(exc).__name__}: {exc}"))
        return PermanentError(both("err_unexpected", f"{type(exc).__name__}: {exc}"))

    async def close(self) -> None:
        """Release what the connector holds (sessions with the remote, files)."""
