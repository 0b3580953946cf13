"""Connector for the post office, the payer (FORMATS.md §3).

Outbound: ``payment.list`` messages become ``DanhSachChiTra`` documents posted to
``{base_url}/danh-sach-chi-tra`` (the core adds ``Idempotency-Key``). Inbound: the payer
pushes ``KetQuaChiTra`` to ``/inbound/post_office``; each result line becomes a
``payment.results`` message (see :mod:`plugins.post_office.results`).

Answers of the payer to a list:

* ``200 <TiepNhan soDong="N"/>`` delivered;
* ``409`` this ``lanGui`` was already received: delivered (it is there already);
* ``400 <Loi ma="xsd">`` the payer found the document invalid: a gateway bug, permanent;
* ``422 <Loi ma="...">`` a business refusal (totals included): permanent, with the reason;
* anything else as the base class: 5xx, 408, 429 retry; other 4xx permanent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from gateway.connector import Connector, both
from gateway.model import Message, OutboundRequest, ParseResult, PermanentError, Receipt
from gateway.xmlsafe import XmlAnswer, body_snippet, error_answer, read_answer
from plugins.post_office.payment_list import render_payment_list
from plugins.post_office.results import parse_results
from plugins.post_office.wire import LOI, TIEP_NHAN, mask_digits

EVENT_PAYMENT_LIST = "payment.list"
PATH = "/danh-sach-chi-tra"


class PostOfficeConnector(Connector):
    """The payer: sends monthly payment lists, takes payment results."""

    content_types: ClassVar[tuple[str, ...]] = ("application/xml", "text/xml")
    emits: ClassVar[tuple[str, ...] | None] = ("payment.results",)

    async def parse(self, body: bytes, content_type: str) -> ParseResult:
        return parse_results(body)

    async def render(self, message: Message) -> OutboundRequest:
        if message.event != EVENT_PAYMENT_LIST:
            raise PermanentError(both("err_po_event", event=repr(message.event)))
        rendered = render_payment_list(message.payload)
        return OutboundRequest(
            method="POST",
            url=self.system.base_url.rstrip("/") + PATH,
            body=rendered.body,
            headers={"Content-Type": "application/xml"},
            context={
                "ky": rendered.ky,
                "maXa": rendered.ma_xa,
                "lanGui": rendered.lan_gui,
                "soDong": rendered.so_dong,
                "tongSoTien": rendered.tong_so_tien,
            },
        )

    def classify_response(
        self,
        status: int,
        body: bytes,
        headers: Mapping[str, str],
        request: OutboundRequest,
    ) -> Receipt:
        ctx = request.context
        which = f"ky={ctx.get('ky')} maXa={ctx.get('maXa')} lanGui={ctx.get('lanGui')}"
        if 200 <= status < 300:
            detail = self._receipt_detail(body, ctx.get("soDong"), which)
            return Receipt(status=status, detail=detail, bytes_received=len(body))
        if status == 409:
            return Receipt(
                status=status,
                detail=both("ans_po_already", which),
                bytes_received=len(body),
            )
        if status == 400:
            raise PermanentError(
                both("err_po_invalid", f"{self._loi_reason(body)} [{which}]"),
                status=status,
            )
        if status == 422:
            raise PermanentError(
                both("err_po_refused", f"{self._loi_reason(body)} [{which}]"),
                status=status,
            )
        return super().classify_response(status, body, headers, request)

    def _receipt_detail(self, body: bytes, sent: object, which: str) -> str:
        answer = read_answer(body)
        if not isinstance(answer, XmlAnswer) or answer.tag != TIEP_NHAN:
            return both("ans_po_unreadable", which)
        so_dong = answer.attributes.get("soDong", "?")
        if sent is not None and so_dong != str(sent):
            return both("ans_po_received_differs", which, lines=so_dong, sent=sent)
        return both("ans_po_received", which, lines=so_dong)

    def _loi_reason(self, body: bytes) -> str:
        found = error_answer(read_answer(body), LOI)
        if found is not None and any(found):
            code, reason = mask_digits(found[0]), mask_digits(found[1])
            return f"{code}: {reason}" if code else reason
        return mask_digits(body_snippet(body, 300)) or both("ans_no_reason")
