"""Writes ``gateway/web/openapi.json``, the OpenAPI 3.1 description of the admin API.

Run ``python -m gateway.web.admin.openapi`` after changing the API; a test checks that the
committed file is what this writes and that it names exactly the registered routes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway import __version__
from gateway.plugins import Plugins, build_plugins
from gateway.web.admin.params import DEFAULT_LIMIT, MAX_LIMIT, OUTCOMES, STATUSES
from gateway.web.admin.present import MAX_ID

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi.json"
Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> Schema:
    return {"type": [kind, "null"], **extra}


TIME = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601, Asia/Ho_Chi_Minh (+07:00)",
}
NTIME = {**TIME, "type": ["string", "null"]}


def _page_of(item: str) -> Schema:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "next_cursor": _nullable(
                "integer", description="before_id of the next page; null on the last"
            ),
        },
    }


def _object(props: dict[str, Schema], required: list[str] | None = None) -> Schema:
    return {"type": "object", "required": required or list(props), "properties": props}


SCHEMAS: dict[str, Schema] = {
    "Error": _object({"error": {"type": "string"}, "message": {"type": "string"}}),
    "HourBar": _object(
        {"start": TIME, "delivered": {"type": "integer"}, "failed": {"type": "integer"}}
    ),
    "System": _object(
        {
            "name": {"type": "string"},
            "plugin": {"type": "string"},
            "queue_depth": {"type": "integer", "description": "pending + in flight"},
            "in_flight": {"type": "integer"},
            "dead": {"type": "integer", "description": "dead letters waiting for an operator"},
            "received_1h": {"type": "integer"},
            "delivered_1h": {"type": "integer"},
            "failed_1h": {"type": "integer", "description": "attempts retried or dead-lettered"},
            "p95_ms": _nullable("number", description="95th percentile attempt time, last hour"),
            "breaker": {"enum": ["closed", "half_open", "open"]},
            "last_error": _nullable("string", description="masked"),
            "last_error_at": NTIME,
            "hourly": {"type": "array", "items": _ref("HourBar"), "minItems": 24, "maxItems": 24},
        }
    ),
    "Delivery": _object(
        {
            "id": {"type": "integer"},
            "status": {"enum": list(STATUSES)},
            "destination": {"type": "string"},
            "route": {"type": "string"},
            "dossier_key": {"type": "string", "description": "MaHoSo"},
            "source": {"type": "string"},
            "event": {"type": "string"},
            "ref": {"type": "string"},
            "attempts": {"type": "integer"},
            "last_status": _nullable("integer"),
            "last_error": _nullable("string", description="masked"),
            "idempotency_key": {"type": "string"},
            "created_at": TIME,
            "updated_at": TIME,
            "next_attempt_at": TIME,
            "deadline_at": TIME,
            "delivered_at": NTIME,
        }
    ),
    "LogEntry": _object(
        {
            "id": {"type": "integer"},
            "at": TIME,
            "delivery_id": {"type": "integer"},
            "dossier_key": {"type": "string"},
            "source": {"type": "string"},
            "destination": {"type": "string"},
            "route": {"type": "string"},
            "attempt": {"type": "integer"},
            "outcome": {"enum": list(OUTCOMES)},
            "http_status": _nullable("integer"),
            "duration_ms": {"type": "number"},
            "bytes_sent": {"type": "integer"},
            "bytes_received": {"type": "integer"},
            "error_class": _nullable("string"),
            "error_message": _nullable("string", description="masked"),
            "next_attempt_at": NTIME,
            "node": {"type": "string"},
            "actor": _nullable("string", description="who replayed it (replayed rows)"),
        }
    ),
    "DeliveryDetail": _object(
        {
            "delivery": {
                "allOf": [_ref("Delivery")],
                "properties": {"payload": {"description": "the message, names and IDs masked"}},
            },
            "attempts": {"type": "array", "items": _ref("LogEntry")},
        }
    ),
    "Message": _object(
        {
            "id": {"type": "integer"},
            "uid": {"type": "string"},
            "source": {"type": "string"},
            "event": {"type": "string"},
            "ref": {"type": "string"},
            "revision": {"type": "integer"},
            "received_at": TIME,
        }
    ),
    "Dossier": _object(
        {
            "dossier_key": {"type": "string"},
            "messages": {"type": "array", "items": _ref("Message")},
            "deliveries": {"type": "array", "items": _ref("Delivery")},
            "attempts": {"type": "array", "items": _ref("LogEntry")},
        }
    ),
    "AuditEntry": _object(
        {
            "id": {"type": "integer"},
            "at": TIME,
            "actor": {"type": "string", "description": "api:NAME, web:NAME or cli:USER"},
            "action": {"type": "string"},
            "target": {"type": "string"},
            "detail": {"type": "string"},
        }
    ),
    "Plugins": _object(
        {
            "plugins": {
                "type": "array",
                "items": _object(
                    {
                        "name": {"type": "string"},
                        "origin": {"type": "string"},
                        "version": {"type": "string"},
                        "hooks": {"type": "array", "items": {"type": "string"}},
                    }
                ),
            },
            "load_errors": {
                "type": "array",
                "items": _object(
                    {
                        "name": {"type": "string"},
                        "origin": {"type": "string"},
                        "reason": {"type": "string"},
                    }
                ),
            },
        }
    ),
    "RetryRequest": {
        **_object(
            {
                "ids": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                    "minItems": 1,
                    "maxItems": 1000,
                }
            }
        ),
        "additionalProperties": False,
    },
    "RetryResult": _object(
        {
            "retried": {"type": "array", "items": {"type": "integer"}},
            "not_retried": {
                "type": "array",
                "items": {"type": "integer"},
                "description": "unknown or not dead",
            },
        },
        required=["retried"],
    ),
    "Revealed": _object(
        {
            "delivery": {"type": "integer"},
            "payload": {"description": "the stored payload, unmasked"},
            "revealed_by": {"type": "string", "description": "api:NAME (audited)"},
        },
        required=["delivery", "payload", "revealed_by"],
    ),
    "Systems": _object(
        {"generated_at": TIME, "systems": {"type": "array", "items": _ref("System")}}
    ),
    "DeliveryPage": _page_of("Delivery"),
    "LogPage": _page_of("LogEntry"),
    "AuditPage": _page_of("AuditEntry"),
}


WHEN: Schema = {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
}


def _q(name: str, description: str, schema: Schema | None = None) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string", "minLength": 1},
    }


PARAMS: dict[str, Schema] = {
    "limit": _q(
        "limit",
        "page size",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
    "before_id": _q(
        "before_id",
        "cursor: rows with a smaller id (next_cursor of the previous page)",
        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    ),
    "system": _q("system", "source or destination system"),
    "outcome": _q("outcome", "attempt outcome", {"enum": list(OUTCOMES)}),
    "dossier": _q("dossier", "dossier key (MaHoSo)"),
    "since": _q(
        "since",
        "from this date or time: RFC 3339 (2025-08-01, 2025-08-01T08:15:00+07:00); the short "
        "form 2025-08-01T08:15 is also taken, as Asia/Ho_Chi_Minh time",
        WHEN,
    ),
    "until": _q("until", "before this date or time (as since)", WHEN),
    "status": _q("status", "delivery status", {"enum": list(STATUSES)}),
    "destination": _q("destination", "destination system"),
    "id": {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    },
    "key": {
        "name": "key",
        "in": "path",
        "required": True,
        "description": "dossier key (MaHoSo)",
        "schema": {"type": "string"},
    },
}


def _json_response(description: str, schema: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _errors(*codes: int) -> dict[str, Schema]:
    text = {
        400: "bad parameter or body",
        401: "no or unknown token",
        403: "the token's role may not",
        404: "unknown id or key",
        409: "not a dead delivery",
        429: "too many failed authentications from this address: wait Retry-After seconds",
    }
    return {
        str(c): {"description": text[c], "content": {"application/json": {"schema": _ref("Error")}}}
        for c in codes
    }


def _op(
    op_id: str,
    summary: str,
    role: str | None,
    ok: Schema,
    params: Sequence[str] = (),
    *,
    errors: tuple[int, ...] = (),
    body: str | None = None,
) -> Schema:
    op: Schema = {
        "operationId": op_id,
        "summary": summary,
        "description": f"Role: {role} or above." if role else "No token needed.",
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in params],
        "responses": {"200": ok, **_errors(*((401, 403, 429) if role else ()), *errors)},
    }
    if role is None:
        op["security"] = []
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return op


LOG_FILTERS = ["system", "outcome", "dossier", "since", "until"]


def build_document(plugins: Plugins | None = None) -> Schema:
    """The admin API's OpenAPI document, with the path items plugins add
    (``gateway_openapi_paths``; the bundled plugins' by default)."""
    csv_ok = {
        "description": "CSV (UTF-8 with BOM), the columns of `gateway deliveries export`",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
    doc_ok = {
        "description": "this document",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    paths: dict[str, dict[str, Schema]] = {
        "/api/v1/openapi.json": {"get": _op("getOpenApi", "This document", None, doc_ok)},
        "/api/v1/systems": {
            "get": _op(
                "listSystems",
                "Overview of every external system",
                "viewer",
                _json_response("systems", "Systems"),
            )
        },
        "/api/v1/deliveries": {
            "get": _op(
                "listDeliveries",
                "Deliveries, newest first",
                "viewer",
                _json_response("a page", "DeliveryPage"),
                ["status", "destination", "dossier", "limit", "before_id"],
                errors=(400,),
            )
        },
        "/api/v1/deliveries/{id}": {
            "get": _op(
                "getDelivery",
                "One delivery with every attempt",
                "viewer",
                _json_response("the delivery", "DeliveryDetail"),
                ["id"],
                errors=(404,),
            )
        },
        "/api/v1/deliveries/{id}/retry": {
            "post": _op(
                "retryDelivery",
                "Queue a dead delivery again (logged and audited)",
                "operator",
                _json_response("queued again", "RetryResult"),
                ["id"],
                errors=(404, 409),
            )
        },
        "/api/v1/deliveries/{id}/reveal": {
            "post": _op(
                "revealDelivery",
                "One delivery's payload in full, personal data unmasked (audited first)",
                "operator",
                _json_response("the payload in full", "Revealed"),
                ["id"],
                errors=(404,),
            )
        },
        "/api/v1/deliveries/retry": {
            "post": _op(
                "retryDeliveries",
                "Queue dead deliveries again (logged and audited)",
                "operator",
                _json_response("what was queued", "RetryResult"),
                errors=(400,),
                body="RetryRequest",
            )
        },
        "/api/v1/log": {
            "get": _op(
                "listLog",
                "The delivery log, newest first",
                "viewer",
                _json_response("a page", "LogPage"),
                [*LOG_FILTERS, "limit", "before_id"],
                errors=(400,),
            )
        },
        "/api/v1/log.csv": {
            "get": _op(
                "exportLog",
                "The filtered delivery log as CSV, oldest first",
                "viewer",
                csv_ok,
                LOG_FILTERS,
                errors=(400,),
            )
        },
        "/api/v1/dossiers/{key}": {
            "get": _op(
                "getDossier",
                "Every message and attempt of one dossier",
                "viewer",
                _json_response("the timeline", "Dossier"),
                ["key"],
                errors=(404,),
            )
        },
        "/api/v1/plugins": {
            "get": _op(
                "listPlugins",
                "Loaded plugins and load errors",
                "viewer",
                _json_response("plugins", "Plugins"),
            )
        },
        "/api/v1/audit": {
            "get": _op(
                "listAudit",
                "The audit log (who did what, when), newest first",
                "admin",
                _json_response("a page", "AuditPage"),
                ["limit", "before_id"],
                errors=(400,),
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "motcua-gateway admin API",
            "version": __version__,
            "description": (
                "Operate the gateway: systems, deliveries, the delivery log, dossiers, "
                "dead letters. Authenticate with `Authorization: Bearer <token>` (a `[[tokens]]` "
                "entry); roles are viewer < operator < admin. Lists are cursor-paginated "
                "(`limit`, `before_id`, `next_cursor`). Names and ID numbers are masked for "
                'every role. Errors are `{"error": code, "message": text}`.'
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {**paths, **dict(sorted((plugins or build_plugins()).openapi_paths().items()))},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": PARAMS,
            "schemas": SCHEMAS,
        },
    }


def render(document: Schema) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def main() -> None:
    OPENAPI_PATH.write_text(render(build_document()), encoding="utf-8")
    print(f"wrote {OPENAPI_PATH}")


if __name__ == "__main__":
    main()
