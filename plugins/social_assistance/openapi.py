"""OpenAPI path items of the social-assistance API routes (merged into the admin API's
committed document through ``gateway_openapi_paths``)."""

from __future__ import annotations

from typing import Any

ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
MONTH = {
    "name": "month",
    "in": "query",
    "required": False,
    "description": "The payment month (kỳ), YYYY-MM, 2000-2100; by default the coming month "
    "(the one whose lists are being prepared)",
    "schema": {"type": "string", "pattern": r"^(20\d\d|2100)-(0[1-9]|1[0-2])$"},
}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "bad parameter or body",
        401: "no or unknown token",
        403: "the token's role may not",
        404: "no such held decision",
        409: "the decision is not held",
    }
    return {str(c): {"description": text[c], "content": ERROR} for c in codes}


def _json(description: str, properties: dict[str, Any]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": list(properties)}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _get(op_id: str, summary: str, ok: dict[str, Any], params: list[Any]) -> dict[str, Any]:
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "description": "Role: viewer or above. Names and ID numbers are masked.",
            "parameters": params,
            "responses": {"200": ok, **_errors(*((400,) if params else ()), 401, 403)},
        }
    }


ANY_LIST = {"type": "array", "items": {"type": "object"}}

PATHS: dict[str, Any] = {
    "/api/v1/payments": _get(
        "listPaymentLists",
        "Payment lists of a month per commune: people, total VND, lanGui, sending and "
        "reconciliation status",
        _json("the month's lists", {"month": {"type": "string"}, "lists": ANY_LIST}),
        [MONTH],
    ),
    "/api/v1/reports/monthly": _get(
        "getMonthlyReport",
        "The monthly report: beneficiaries and amounts by category and commune, increases and "
        "decreases, arrears, carried unpaid, suspension candidates, timeliness",
        _json("the report", {"month": {"type": "string"}, "report": {"type": "object"}}),
        [MONTH],
    ),
    "/api/v1/payments/held": _get(
        "listHeldDecisions",
        "Decisions held because the registry's amount differs from the rules (both figures)",
        _json("held decisions", {"held": ANY_LIST}),
        [],
    ),
    "/api/v1/payments/held/{id}/accept": {
        "post": {
            "operationId": "acceptHeldDecision",
            "summary": "Accept one figure of a held decision (audited); it then applies",
            "description": "Role: operator or above.",
            "parameters": [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {"figure": {"enum": ["gateway", "registry"]}},
                            "required": ["figure"],
                            "additionalProperties": False,
                        }
                    }
                },
            },
            "responses": {
                "200": _json("accepted", {"accepted": {"type": "object"}}),
                **_errors(400, 401, 403, 404, 409),
            },
        }
    },
}
