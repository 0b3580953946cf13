"""``http_json``: the smallest useful connector — JSON in, JSON out over HTTP POST.

Inbound (``POST /inbound/{system}``): a JSON object, a list of objects, or ``{"data": [...]}``;
each object needs an id (``id_field``, default ``id``). Outbound: ``POST {base_url}{path}``
with the message as JSON (an envelope by default, or the bare payload).

It is also the example to copy when writing a connector (docs/writing-a-connector.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from gateway import hookimpl
from gateway.api import SystemConfig
from gateway.connector import Connector
from gateway.model import BadRequest, Message, OutboundRequest, ParseResult, Rejection

__version__ = "0.1.0"


_encode = json.JSONEncoder(ensure_ascii=False).encode


class HttpJsonOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = ""
    event: str = "message.received"
    id_field: str = "id"
    key_field: str | None = None
    procedure_field: str | None = None
    envelope: bool = True


class HttpJsonConnector(Connector):
    content_types = ("application/json",)
    options_model = HttpJsonOptions
    options: HttpJsonOptions

    async def parse(self, body: bytes, content_type: str) -> ParseResult:
        try:
            doc = json.loads(body)
        except ValueError as exc:  # not UTF-8, not JSON, or a number too long to convert
            raise BadRequest(f"body is not JSON: {exc}") from None
        items = doc.get("data") if isinstance(doc, dict) and "data" in doc else doc
        if isinstance(items, dict):
            items = [items]
        if not isinstance(items, list):
            raise BadRequest('body must be a JSON object, a list of objects, or {"data": [...]}')
        result = ParseResult()
        opts = self.options
        for i, item in enumerate(items):
            ref = f"data[{i}]"
            if not isinstance(item, dict):
                result.rejected.append(Rejection(ref, ("item is not a JSON object",)))
                continue
            ext_id = item.get(opts.id_field)
            if not isinstance(ext_id, str | int) or isinstance(ext_id, bool) or str(ext_id) == "":
                result.rejected.append(
                    Rejection(ref, (f"{opts.id_field}: missing or not a string",))
                )
                continue
            key = item.get(opts.key_field) if opts.key_field else None
            proc = item.get(opts.procedure_field) if opts.procedure_field else None
            result.messages.append(
                Message(
                    event=str(item.get("event") or opts.event),
                    external_id=str(ext_id),
                    payload=item,
                    dossier_key=str(key) if key else "",
                    procedure=str(proc) if proc else None,
                )
            )
        return result

    async def render(self, message: Message) -> OutboundRequest:
        # the payload goes out as its canonical JSON (the stored text: not serialised again)
        body = message.canonical_payload()
        if self.options.envelope:
            head = {
                "event": message.event,
                "source": message.source,
                "id": message.external_id,
                "dossier_key": message.dossier_key,
                "revision": message.revision,
            }
            body = _encode(head)[:-1].encode() + b',"payload":' + body + b"}"
        return OutboundRequest(
            method="POST",
            url=f"{self.system.base_url.rstrip('/')}{self.options.path}",
            body=body,
            headers={"Content-Type": "application/json"},
        )


@hookimpl
def gateway_register_connectors(
    register: Callable[[str, Callable[[SystemConfig], Connector]], None],
) -> None:
    register("http_json", HttpJsonConnector)
