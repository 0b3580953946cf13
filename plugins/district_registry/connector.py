"""The connector for the social-assistance registry (system ``registry``, FORMATS.md §2)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from gateway.connector import Connector, both
from gateway.model import (
    BadRequest,
    Message,
    OutboundRequest,
    ParseResult,
    PermanentError,
    Receipt,
)
from gateway.xmlsafe import XmlError, body_snippet, error_answer, parse_xml, read_answer

from .decisions import read_decisions
from .render import KIND_DOSSIER, KIND_SUSPENSION, render_message
from .wire import q

EVENT_ACCEPTED = "dossier.accepted"
EVENT_REFUSED = "dossier.refused"


#: the usual answer, an empty ``BienNhan`` with plain ASCII attributes (no entity, no
#: markup, no DOCTYPE can hide in it), read without building a tree (a third of the cost);
#: anything else goes to the hardened parser
_PLAIN_ANSWER = re.compile(
    rb'(?:<\?xml version=["\']1\.0["\'](?: encoding=["\'](?i:utf-8)["\'])?\?>)?\s*'
    rb'<(BienNhan|TiepNhan) xmlns="urn:vn:btxh:registry:1"'
    rb'((?: [A-Za-z]{1,32}="[ !#-%(-;=?-~]{0,200}")*) ?/>\s*'
)
_PLAIN_ATTRIBUTE = re.compile(rb' ([A-Za-z]+)="([^"]*)"')


def _answer(body: bytes) -> tuple[str, dict[str, str], str] | str:
    """The registry's answer as ``(element name, attributes, text)``, or why it is unreadable."""
    plain = _PLAIN_ANSWER.fullmatch(body) if len(body) < 2048 else None
    if plain is not None:
        attributes = {k.decode(): v.decode() for k, v in _PLAIN_ATTRIBUTE.findall(plain[2])}
        if len(attributes) == plain[2].count(b"="):  # each attribute once
            return plain[1].decode(), attributes, ""
    answer = read_answer(body)
    if isinstance(answer, str):
        return answer
    for name in ("BienNhan", "Loi", "TiepNhan"):
        if answer.tag == q(name):
            return name, answer.attributes, answer.text
    return f"unexpected answer element {answer.tag}"


def _loi(body: bytes) -> tuple[str, str]:
    """``(ma, reason)`` of a ``<Loi>`` answer; a readable stand-in when there is none."""
    found = error_answer(read_answer(body), q("Loi"))
    if found is not None:
        return found
    snippet = body_snippet(body, 200)
    return "", f"(câu trả lời không đọc được / unreadable answer: {snippet or 'empty body'})"


class RegistryConnector(Connector):
    """Sends applications and suspension candidates to the registry; reads its decisions."""

    content_types: ClassVar[tuple[str, ...]] = ("application/xml", "text/xml")
    emits: ClassVar[tuple[str, ...] | None] = (EVENT_ACCEPTED, EVENT_REFUSED, "decision.issued")

    # -- inbound: decisions (§2.2) ----------------------------------------------------------
    async def parse(self, body: bytes, content_type: str) -> ParseResult:
        try:
            root = parse_xml(body)
        except XmlError as exc:
            raise BadRequest(f"XML bị từ chối (XML refused): {exc}") from None
        return read_decisions(root)

    # -- outbound: applications (§2.1), suspension candidates (§2.3) ------------------------
    async def render(self, message: Message) -> OutboundRequest:
        return render_message(message, self.system.base_url)

    def classify_response(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        request: OutboundRequest,
    ) -> Receipt:
        kind = request.context.get("kind")
        if kind == KIND_DOSSIER:
            return self._classify_dossier(status, body, headers, request)
        if kind == KIND_SUSPENSION:
            return self._classify_suspension(status, body, headers, request)
        return super().classify_response(status, body, headers, request)

    def _classify_dossier(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        request: OutboundRequest,
    ) -> Receipt:
        ma_ho_so = str(request.context.get("maHoSo", ""))
        revision: Any = request.context.get("lanCapNhat", 1)
        if 200 <= status < 300:
            answer = _answer(body)
            if isinstance(answer, tuple) and answer[0] == "BienNhan":
                detail = both("ans_registry_receipt", number=answer[1].get("soBienNhan", "?"))
            else:
                reason = answer if isinstance(answer, str) else f"{answer[0]} instead of BienNhan"
                detail = both("ans_unreadable", reason, status=status)
            return self._accepted(status, detail, body, ma_ho_so, revision)
        if status == 409:
            detail = both("ans_registry_has", revision=revision)
            return self._accepted(status, detail, body, ma_ho_so, revision)
        if status == 400:
            _, reason = _loi(body)
            raise PermanentError(both("err_registry_invalid", reason), status=400)
        if status == 422:
            ma, reason = _loi(body)
            refused = Message(
                event=EVENT_REFUSED,
                external_id=ma_ho_so,
                dossier_key=ma_ho_so,
                payload={"MaHoSo": ma_ho_so, "lanCapNhat": revision, "ma": ma, "lyDo": reason},
            )
            # The registry decided: the dossier was delivered and refused on its merits. It goes
            # back to the desk (status 5) through the follow-up; it is not a dead letter, since
            # no retry can help until the citizen supplements (a new revision comes then).
            return Receipt(
                status=422,
                detail=both("ans_registry_refused", reason, code=ma or "?"),
                bytes_received=len(body),
                follow_ups=[refused],
            )
        return super().classify_response(status, body, headers, request)

    @staticmethod
    def _accepted(status: int, detail: str, body: bytes, ma_ho_so: str, revision: Any) -> Receipt:
        accepted = Message(
            event=EVENT_ACCEPTED,
            external_id=ma_ho_so,
            dossier_key=ma_ho_so,
            payload={"MaHoSo": ma_ho_so, "lanCapNhat": revision},
        )
        return Receipt(
            status=status, detail=detail, bytes_received=len(body), follow_ups=[accepted]
        )

    def _classify_suspension(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        request: OutboundRequest,
    ) -> Receipt:
        ky, ma_xa = request.context.get("ky"), request.context.get("maXa")
        if 200 <= status < 300:
            answer = _answer(body)
            if isinstance(answer, tuple) and answer[0] == "TiepNhan":
                detail = both(
                    "ans_registry_took_list",
                    ky=ky,
                    commune=ma_xa,
                    lines=answer[1].get("soDong", "?"),
                )
            else:
                reason = answer if isinstance(answer, str) else f"{answer[0]} instead of TiepNhan"
                detail = both("ans_unreadable", reason, status=status)
            return Receipt(status=status, detail=detail, bytes_received=len(body))
        if status == 409:
            return Receipt(
                status=status,
                detail=both("ans_registry_has_list", ky=ky, commune=ma_xa),
                bytes_received=len(body),
            )
        if status == 400:
            _, reason = _loi(body)
            raise PermanentError(both("err_registry_invalid", reason), status=400)
        if status == 422:
            ma, reason = _loi(body)
            raise PermanentError(
                both("err_registry_list_refused", reason, code=ma or "?"), status=422
            )
        return super().classify_response(status, body, headers, request)
