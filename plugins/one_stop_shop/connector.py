"""The one-stop-shop connector: the national DVCQG sync protocol (FORMATS.md §1).

Inbound, the one-stop-shop pushes DongBoHoSoMC bodies (or is polled). Outbound, the gateway
speaks its *adapter*: log in at ``/auth`` for a session token, then ``POST /integration``
with ``{"session", "madonvi", "service", ...}``. The token is kept on the connector and shared
by concurrent sends (one login at a time); an expired session (HTTP 200, ``error_code
"401"``) is renewed and the call repeated once.

Adapter error codes other than ``"00"`` are classified by :data:`wire.RETRYABLE_CODES`:
``-1`` (the adapter's "system error") and HTTP-like 5xx / 429 codes are temporary and
retried; every other code refuses the data and is permanent, with the adapter's message.
An answer that is not JSON (a proxy's HTML page during maintenance, say) is retryable.
An HTTP 401 from ``/integration`` is read as an expired session, like ``error_code "401"``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel

from gateway.api import SystemConfig
from gateway.connector import Connector, both
from gateway.model import (
    BadRequest,
    GatewayError,
    Message,
    OutboundRequest,
    ParseResult,
    PermanentError,
    Receipt,
    RetryableError,
    now_vn,
)
from plugins.one_stop_shop import results
from plugins.one_stop_shop.inbound import (
    decode_document,
    decode_push,
    next_cursor,
    parse_document,
)
from plugins.one_stop_shop.options import OneStopShopOptions
from plugins.one_stop_shop.wire import (
    CODE_OK,
    CODE_SESSION_EXPIRED,
    RETRYABLE_CODES,
    SERVICE_LOOKUP,
    SERVICE_PROGRESS,
    SERVICE_SYNC,
    STATUS_PROCESSING,
    STATUS_SUPPLEMENT_REQUESTED,
    code_of,
)

ACCEPTED_TEXT = "Phòng LĐTBXH đã tiếp nhận hồ sơ"
KIND_PROGRESS = "progress"
KIND_RESULT = "result"
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def _prefixed(where: str, exc: GatewayError) -> GatewayError:
    """The same classification with the adapter call named in front of the reason."""
    reason = f"{where}: {exc.reason}"
    if isinstance(exc, RetryableError):
        return RetryableError(reason, status=exc.status, retry_after=exc.retry_after)
    return PermanentError(reason, status=exc.status)


def _message_of(answer: Mapping[str, Any]) -> str:
    message = answer.get("message") or answer.get("error_message") or ""
    return str(message).strip()[:300]


class OneStopShopConnector(Connector):
    """Connector for a one-stop-shop (một cửa điện tử) speaking the DVCQG sync protocol."""

    content_types: ClassVar[tuple[str, ...]] = ("application/json",)
    emits: ClassVar[tuple[str, ...] | None] = ("dossier.received",)
    options_model: ClassVar[type[BaseModel]] = OneStopShopOptions
    options: OneStopShopOptions

    def __init__(self, system: SystemConfig) -> None:
        super().__init__(system)
        self._session_token: str | None = None
        self._login_lock = asyncio.Lock()

    # -- inbound ---------------------------------------------------------------------------
    async def parse(self, body: bytes, content_type: str) -> ParseResult:
        """A DongBoHoSoMC push: one ``dossier.received`` message per good item."""
        return parse_document(*decode_push(body))

    async def poll(
        self, session: aiohttp.ClientSession, cursor: str | None
    ) -> tuple[ParseResult, str | None]:
        """``GET {base_url}{poll_path}?tu=<cursor>``: a push-shaped page plus ``cursor``."""
        url = self._url(self.options.poll_path)
        params = {"tu": cursor} if cursor else {}
        try:
            async with session.get(
                url,
                params=params,
                timeout=self._timeout(),
                proxy=self.system.proxy or None,
                allow_redirects=False,  # a 3xx is a failed poll (classify_response)
            ) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except Exception as exc:  # every transport failure is classified
            raise _prefixed("poll", self.classify_exception(exc)) from exc
        if not 200 <= status < 300:
            self._raise_http("poll", status, raw, headers, OutboundRequest("GET", url))
        try:
            document = decode_document(raw)
            return parse_document(document), next_cursor(document, cursor)
        except BadRequest as exc:
            raise PermanentError(both("err_oss_poll", str(exc)), status=status) from None

    # -- outbound: render ------------------------------------------------------------------
    async def render(self, message: Message) -> OutboundRequest:
        """``dossier.accepted`` / ``dossier.refused`` -> a progress step (TrangThai 4 / 5);
        ``decision.issued`` -> the result (DongBoHoSoMC, merged into the dossier at send)."""
        payload = message.payload
        if not isinstance(payload, Mapping):
            raise PermanentError(both("err_payload_object", message.event))
        if message.event == "dossier.accepted":
            ma = results.require_text(payload, "MaHoSo", message.event)
            return self._progress(ma, STATUS_PROCESSING, ACCEPTED_TEXT, payload)
        if message.event == "dossier.refused":
            ma = results.require_text(payload, "MaHoSo", message.event)
            reason = str(payload.get("lyDo") or "").strip()
            code = str(payload.get("ma") or "").strip()
            text = reason or f"Hồ sơ cần bổ sung (mã {code or 'không rõ'})"
            return self._progress(ma, STATUS_SUPPLEMENT_REQUESTED, text, payload)
        if message.event == "decision.issued":
            return self._result(payload)
        raise PermanentError(both("err_oss_event", event=repr(message.event)))

    def _progress(
        self, ma: str, status: str, text: str, payload: Mapping[str, Any]
    ) -> OutboundRequest:
        item = results.progress_item(
            ma, status, text, self.options, now_vn(), results.due_date(payload)
        )
        body = {"madonvi": self._madonvi(), "service": SERVICE_PROGRESS, "data": [item]}
        context = {"service": SERVICE_PROGRESS, "kind": KIND_PROGRESS, "MaHoSo": ma}
        return self._request(body, {**context, "TrangThai": status})

    def _result(self, decision: Mapping[str, Any]) -> OutboundRequest:
        so = results.require_text(decision, "so", "decision.issued")
        ma = results.require_text(decision, "maHoSo", "decision.issued")
        patch = results.result_patch(decision, self.options, now_vn())
        body = {
            "madonvi": self._madonvi(),
            "service": SERVICE_SYNC,
            "isUpdating": "True",
            "data": [patch],
        }
        context = {
            "service": SERVICE_SYNC,
            "kind": KIND_RESULT,
            "MaHoSo": ma,
            "GiayToId": so,
            "soDinhDanh": str(decision.get("soDinhDanh") or ""),
            "hoTen": str(decision.get("hoTen") or ""),
            "loai": str(decision.get("loai") or ""),
        }
        return self._request(body, context)

    def _request(self, body: dict[str, Any], context: dict[str, Any]) -> OutboundRequest:
        return OutboundRequest(
            method="POST",
            url=self._url("/integration"),
            body=json.dumps(body, ensure_ascii=False).encode(),
            headers=dict(JSON_HEADERS),
            context=context,
        )

    def _madonvi(self) -> str:
        if not self.options.madonvi:
            raise PermanentError(both("err_not_set", system=self.name, key="madonvi"))
        return self.options.madonvi

    def _url(self, path: str) -> str:
        if not self.system.base_url:
            raise PermanentError(both("err_not_set", system=self.name, key="base_url"))
        return self.system.base_url.rstrip("/") + "/" + path.lstrip("/")

    # -- outbound: send --------------------------------------------------------------------
    async def send(self, session: aiohttp.ClientSession, request: OutboundRequest) -> Receipt:
        """One adapter call; a result first looks the dossier up (safe to resend)."""
        try:
            call = json.loads(request.body)
        except ValueError:
            raise PermanentError(both("err_oss_not_json")) from None
        if not isinstance(call, dict) or not isinstance(call.get("service"), str):
            raise PermanentError(both("err_oss_no_service"))
        if request.context.get("kind") == KIND_RESULT:
            return await self._send_result(session, call, request)
        _, size = await self._call(session, call, request.headers)
        ma = request.context.get("MaHoSo", "")
        step = request.context.get("TrangThai")
        detail = both(
            "ans_oss_sent",
            service=call["service"],
            dossier=ma,
            step=f" TrangThai {step}" if step else "",
        )
        return Receipt(status=200, detail=detail, bytes_received=size)

    async def _send_result(
        self, session: aiohttp.ClientSession, call: dict[str, Any], request: OutboundRequest
    ) -> Receipt:
        patch = call["data"][0]
        ma = str(patch["MaHoSo"])
        so = str(request.context.get("GiayToId") or patch["DanhSachGiayToKetQua"][0]["GiayToId"])
        lookup = {"madonvi": call.get("madonvi", ""), "service": SERVICE_LOOKUP, "mahoso": ma}
        answer, looked = await self._call(session, lookup, {})
        found = answer.get("result")
        if not isinstance(found, list):
            raise PermanentError(both("err_oss_no_list", service=SERVICE_LOOKUP), status=200)
        dossier = next(
            (d for d in found if isinstance(d, Mapping) and str(d.get("MaHoSo", "")) == ma), None
        )
        if dossier is None and request.context.get("loai") != "huong":
            # adjustments, suspensions, resumptions and stops are often the registry's own
            # (an age bound, three unpaid months): no desk dossier, nothing to return there
            detail = both("ans_oss_registry_own", dossier=ma, decision=so)
            return Receipt(status=200, detail=detail, bytes_received=looked)
        if dossier is None:
            raise PermanentError(
                both("err_oss_unknown_dossier", dossier=ma, decision=so), status=200
            )
        if results.has_result(dossier, so):
            detail = both("ans_oss_has_result", dossier=ma, decision=so)
            return Receipt(status=200, detail=detail, bytes_received=looked)
        named = {k: request.context.get(k) or None for k in ("soDinhDanh", "hoTen")}
        results.check_same_person(dossier, {"so": so, **named})
        merged = results.merge_result(dossier, patch)
        _, size = await self._call(session, {**call, "data": [merged]}, request.headers)
        detail = both(
            "ans_oss_result",
            service=SERVICE_SYNC,
            dossier=ma,
            decision=so,
            state=merged["TrangThaiHoSo"],
        )
        return Receipt(status=200, detail=detail, bytes_received=looked + size)

    async def _call(
        self, session: aiohttp.ClientSession, call: Mapping[str, Any], headers: Mapping[str, str]
    ) -> tuple[dict[str, Any], int]:
        """``POST /integration``; renew an expired session and repeat once."""
        service = str(call.get("service", "integration"))
        stale: str | None = None
        for _ in range(2):
            token = await self._session(session, stale)
            body = {"session": token, **{k: v for k, v in call.items() if k != "session"}}
            answer, size = await self._post(session, "/integration", body, headers, service)
            code = code_of(answer.get("error_code"))
            if code == CODE_OK:
                return answer, size
            if code != CODE_SESSION_EXPIRED:
                raise self._adapter_error(service, code, answer)
            stale = token
        raise RetryableError(both("err_oss_session", service=service), status=200)

    async def _session(self, session: aiohttp.ClientSession, stale: str | None) -> str:
        """The current token, logging in when there is none or it is ``stale``.

        Concurrent sends queue on the lock; the first logs in, the others reuse its token.
        """
        async with self._login_lock:
            if self._session_token is not None and self._session_token != stale:
                return self._session_token
            self._session_token = None
            self._session_token = await self._login(session)
            return self._session_token

    async def _login(self, session: aiohttp.ClientSession) -> str:
        password = self.options.password
        if not self.options.username or password is None:
            raise PermanentError(both("err_oss_login_config", system=self.name))
        credentials = {"username": self.options.username, "password": password.get_secret_value()}
        answer, _ = await self._post(session, "/auth", credentials, {}, "auth")
        code = code_of(answer.get("error_code"))
        token = answer.get("session")
        if code in RETRYABLE_CODES:
            raise RetryableError(
                both("err_oss_code", _message_of(answer), service="auth", code=code), status=200
            )
        if code not in ("0", CODE_OK):
            raise PermanentError(
                both("err_oss_login_refused", _message_of(answer) or f"error_code {code}"),
                status=200,
            )
        if not isinstance(token, str) or not token:
            raise PermanentError(both("err_oss_no_token"), status=200)
        return token

    def _adapter_error(self, service: str, code: str, answer: Mapping[str, Any]) -> GatewayError:
        reason = both("err_oss_code", _message_of(answer) or "–", service=service, code=code or "–")
        if code in RETRYABLE_CODES:
            return RetryableError(reason, status=200)
        return PermanentError(reason, status=200)

    async def _post(
        self,
        session: aiohttp.ClientSession,
        path: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        where: str,
    ) -> tuple[dict[str, Any], int]:
        """POST JSON; HTTP-level failures are classified by the base class."""
        url = self._url(path)
        data = json.dumps(body, ensure_ascii=False).encode()
        sent_headers = {**headers, **JSON_HEADERS}
        try:
            async with session.post(
                url,
                data=data,
                headers=sent_headers,
                timeout=self._timeout(),
                proxy=self.system.proxy or None,
                allow_redirects=False,  # never re-send a dossier or the password elsewhere
            ) as resp:
                raw = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except Exception as exc:  # every transport failure is classified
            raise _prefixed(where, self.classify_exception(exc)) from exc
        if status == 401 and path != "/auth":
            # some adapters answer an expired session with a real HTTP 401: same meaning
            return {"error_code": CODE_SESSION_EXPIRED}, len(raw)
        if not 200 <= status < 300:
            request = OutboundRequest("POST", url, data, sent_headers)
            self._raise_http(where, status, raw, resp_headers, request)
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise RetryableError(
                both("err_oss_not_object", where=where, status=status), status=status
            )
        return answer, len(raw)

    def _raise_http(
        self,
        where: str,
        status: int,
        raw: bytes,
        headers: Mapping[str, str],
        request: OutboundRequest,
    ) -> None:
        try:
            self.classify_response(status, raw, headers, request)
        except GatewayError as exc:
            raise _prefixed(where, exc) from None
        raise PermanentError(both("err_oss_unexpected", where=where, status=status), status=status)

    def _timeout(self) -> aiohttp.ClientTimeout:
        t = self.system.timeout
        return aiohttp.ClientTimeout(
            sock_connect=t.connect, sock_read=t.read, total=t.connect + t.read
        )
