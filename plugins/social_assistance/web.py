"""Dashboard pages and admin API of the social-assistance plugin.

Pages (admin framework: :func:`protect`, :data:`NAV`, :func:`render_page`):
``/payments`` (lists of a month per commune, delivery and reconciliation status),
``/payments/held`` (held decisions; an operator accepts one figure, CSRF-protected and
audited), ``/payments/candidates``, ``/payments/timeliness``. API: ``GET /api/v1/payments``,
``GET /api/v1/reports/monthly``, ``GET /api/v1/payments/held``,
``POST /api/v1/payments/held/{id}/accept``. Personal data is masked for every role.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jinja2
from aiohttp import web
from prometheus_client import Gauge

from gateway.log import get_logger, mask_name
from gateway.model import now_vn
from gateway.web.admin import NAV, NavEntry, add_templates, principal, protect, render_page
from gateway.web.admin.charts import column_chart, hbar_chart
from gateway.web.admin.i18n import (
    LANGS,
    MESSAGES,
    format_compact,
    format_money,
    format_month,
    translate,
)
from gateway.web.admin.pages import lang_of
from gateway.web.errors import ApiError
from gateway.web.keys import CONFIG, CONNECTORS, METRICS, STORE, need
from plugins.social_assistance import service
from plugins.social_assistance.connector import SocialAssistanceConnector
from plugins.social_assistance.labels import bien_dong_label, category_label, commune_label
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import AcceptError, Domain, accept_decision, load_domain
from plugins.vn_common.cccd import mask_cccd

log = get_logger("plugins.social_assistance.web")
DOMAIN = web.AppKey("social_assistance_domain", Domain)
GAUGE = web.AppKey("social_assistance_gauge", Gauge)
API = "/api/v1"
_DUMPS = functools.partial(json.dumps, ensure_ascii=False)  # Vietnamese as itself, not \\u
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: the pages' strings, from the dashboard's one catalogue (keys ``sa_*`` there)
TEXT: dict[str, dict[str, str]] = {
    lang: {k[3:]: v for k, v in MESSAGES[lang].items() if k.startswith("sa_")} for lang in LANGS
}


def _domain(app: web.Application) -> Domain:
    found = app.get(DOMAIN)
    if found is None:
        found = load_domain(need(app, CONFIG))
        app[DOMAIN] = found
    return found


async def startup(app: web.Application) -> None:
    """Attach the connector(s) to the store and the rules; publish list totals."""
    domain = _domain(app)
    store = need(app, STORE)
    for connector in need(app, CONNECTORS).values():
        if isinstance(connector, SocialAssistanceConnector):
            connector.attach(store, domain)
    if GAUGE not in app:
        app[GAUGE] = Gauge(
            "gateway_payment_list_vnd",
            "Total VND of the latest payment lists of a month (all communes)",
            ["ky"],
            registry=need(app, METRICS).registry,
        )
    await refresh_metric(app)


async def refresh_metric(app: web.Application) -> None:
    gauge = app.get(GAUGE)
    if gauge is None:
        return
    for ky, total in (await service.list_totals(need(app, STORE))).items():
        gauge.labels(ky).set(total)


def _month(request: web.Request, *, api: bool) -> Month:
    text = request.query.get("month") or str(Month.of(now_vn().date()) + 1)
    try:
        month = Month.parse(text)
        if not MIN_YEAR <= month.year <= MAX_YEAR:  # the rules start in 2014; arithmetic
            raise ValueError(text)  # on year 1 would underflow
        return month
    except ValueError:
        if api:
            raise ApiError(
                400,
                "bad_month",
                f"month must be YYYY-MM from {MIN_YEAR}-01 to {MAX_YEAR}-12, not {text!r}",
            ) from None
        raise _BadMonth from None


MIN_YEAR, MAX_YEAR = 2000, 2100


class _BadMonth(ValueError):
    """A page's ?month= is not YYYY-MM: the page answers 400 with a readable message."""


def _page(handler: Handler) -> Handler:
    """A dashboard page whose bad ?month= is a readable 400 page (not the bare error body)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _BadMonth:
            text = translate(
                lang_of(request), "sa_bad_month", first=f"{MIN_YEAR}-01", last=f"{MAX_YEAR}-12"
            )
            return await render_page(
                request, "sa_message.html", _ctx(request, text=text), status=400
            )

    return wrapped


def _ctx(request: web.Request, **extra: Any) -> dict[str, Any]:
    lang = lang_of(request) if lang_of(request) in TEXT else "vi"
    if isinstance(extra.get("month"), Month) and "picker" not in extra:
        extra["picker"] = _month_nav(extra["month"], [], lang)
    return {"s": TEXT[lang], **extra}


# -- pages ----------------------------------------------------------------------------------------
def _month_nav(month: Month, known: list[str], lang: str) -> dict[str, Any]:
    """The styled month picker: a select of months (the year around the shown one and every
    month with lists), with the previous and next months as links."""
    around = {str(month + k) for k in range(-12, 4)}
    options = sorted(around | {k for k in known if k[:4].isdigit()}, reverse=True)
    return {
        "value": str(month),
        "label": format_month(str(month), lang),
        "options": [(k, format_month(k, lang)) for k in options],
        "prev": str(month - 1) if (month - 1).year >= MIN_YEAR else None,
        "next": str(month + 1) if (month + 1).year <= MAX_YEAR else None,
    }


def _short_month(ky: str, lang: str) -> str:
    year, mon = ky.split("-")
    return f"{mon}/{year[2:]}" if lang == "vi" else format_month(ky, lang)[:3] + " " + year[2:]


async def payments_page(request: web.Request) -> web.Response:
    month = _month(request, api=False)
    lang = lang_of(request)
    store, domain = need(request.app, STORE), _domain(request.app)
    rows = await service.overview(store, domain, month)
    await refresh_metric(request.app)
    totals = await service.list_totals(store)
    report = await service.monthly(store, domain, month) if rows else {}
    units, rules = domain.admin_units, domain.rules
    for r in rows:
        r["commune"] = commune_label(units, r["maXa"], month, lang)
    by_commune = hbar_chart(
        [(r["commune"], r["total"], format_money(r["total"], lang)) for r in rows]
    )
    categories = sorted((report.get("by_category") or {}).items())
    by_category = hbar_chart(
        [
            (category_label(rules, code, lang), t["amount"], format_money(t["amount"], lang))
            for code, t in categories
        ]
    )
    last12 = [str(month + k) for k in range(-11, 1)]
    months = column_chart(
        [
            (
                format_month(k, lang),
                _short_month(k, lang),
                totals.get(k, 0),
                format_money(totals.get(k, 0), lang),
            )
            for k in last12
        ],
        compact=lambda v: format_compact(v, lang),
    )
    changes = [
        (bien_dong_label(k, lang), n) for k, n in sorted((report.get("changes") or {}).items()) if n
    ]
    return await render_page(
        request,
        "sa_payments.html",
        _ctx(
            request,
            month=month,
            picker=_month_nav(month, list(totals), lang),
            rows=rows,
            by_commune=by_commune,
            by_category=by_category,
            months_chart=months,
            changes=changes,
            month_total=sum(r["total"] for r in rows),
        ),
    )


async def held_page(request: web.Request) -> web.Response:
    rows = await service.held(need(request.app, STORE))
    return await render_page(request, "sa_held.html", _ctx(request, rows=rows))


async def held_accept_form(request: web.Request) -> web.Response:
    form = await request.post()
    try:
        row_id = int(str(form.get("id", "")))
        figure = str(form.get("figure", ""))
        if figure not in ("gateway", "registry"):
            raise ValueError(figure)
        await _accept(request, row_id, figure)
    except (ValueError, AcceptError):
        return await render_page(
            request,
            "sa_message.html",
            _ctx(request, text=translate(lang_of(request), "sa_bad_accept")),
            status=400,
        )
    raise web.HTTPSeeOther("/payments/held")


async def _accept(request: web.Request, row_id: int, figure: str) -> dict[str, Any]:
    who = principal(request)
    result: dict[str, Any] = await need(request.app, STORE).write(
        accept_decision, row_id, figure, who.actor, time.time()
    )
    log.info("sa_decision_accepted", id=row_id, figure=figure, actor=who.actor)
    return result


async def candidates_page(request: web.Request) -> web.Response:
    month = _month(request, api=False)
    found = await service.candidates(need(request.app, STORE), _domain(request.app), month)
    lang = lang_of(request)
    units = _domain(request.app).admin_units
    rows = [
        {
            "maXa": c["maXa"],
            "commune": commune_label(units, c["maXa"], month, lang),
            "soDinhDanh": mask_cccd(p["soDinhDanh"]),
            "hoTen": mask_name(p["hoTen"]),
            "months": ", ".join(format_month(k, lang) for k in p["cacThangChuaNhan"]),
        }
        for c in found
        for p in c["doiTuong"]
    ]
    return await render_page(request, "sa_candidates.html", _ctx(request, month=month, rows=rows))


async def timeliness_page(request: web.Request) -> web.Response:
    month = _month(request, api=False)
    report = await service.monthly(need(request.app, STORE), _domain(request.app), month)
    return await render_page(
        request, "sa_timeliness.html", _ctx(request, month=month, t_data=report["timeliness"])
    )


# -- API ------------------------------------------------------------------------------------------
async def api_payments(request: web.Request) -> web.Response:
    month = _month(request, api=True)
    rows = await service.overview(need(request.app, STORE), _domain(request.app), month)
    return web.json_response({"month": str(month), "lists": rows}, dumps=_DUMPS)


async def api_report(request: web.Request) -> web.Response:
    month = _month(request, api=True)
    report = await service.monthly(need(request.app, STORE), _domain(request.app), month)
    return web.json_response({"month": str(month), "report": report}, dumps=_DUMPS)


async def api_held(request: web.Request) -> web.Response:
    return web.json_response({"held": await service.held(need(request.app, STORE))}, dumps=_DUMPS)


async def api_accept(request: web.Request) -> web.Response:
    try:
        row_id = int(request.match_info["id"])
    except ValueError:
        raise ApiError(404, "not_found", "no such held decision") from None
    if not 0 < row_id < 2**63:  # beyond any 64-bit id: the database could not even compare it
        raise ApiError(404, "not_found", "no such held decision")
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "bad_body", 'send JSON {"figure": "gateway"|"registry"}') from None
    figure = body.get("figure") if isinstance(body, dict) else None
    if figure not in ("gateway", "registry") or set(body) != {"figure"}:
        raise ApiError(400, "bad_body", 'send JSON {"figure": "gateway"|"registry"}')
    try:
        result = await _accept(request, row_id, str(figure))
    except AcceptError as exc:
        raise ApiError(409 if "not held" in str(exc) else 404, "not_held", str(exc)) from None
    return web.json_response({"accepted": result}, dumps=_DUMPS)


def setup_routes(app: web.Application) -> None:
    here = __import__("pathlib").Path(__file__).parent / "templates"
    add_templates(app, jinja2.FileSystemLoader(here))
    pages = [
        ("/payments", payments_page, "payments"),
        ("/payments/held", held_page, "held"),
        ("/payments/candidates", candidates_page, "candidates"),
        ("/payments/timeliness", timeliness_page, "timeliness"),
    ]
    for path, handler, _key in pages:
        app.router.add_get(path, _page(handler))
        protect(app, path, "viewer")
    app[NAV].append(NavEntry("/payments", {lang: TEXT[lang]["payments"] for lang in LANGS}))
    app.router.add_post("/payments/held/accept", held_accept_form)
    protect(app, "/payments/held/accept", "operator")
    for path, handler in (
        (f"{API}/payments", api_payments),
        (f"{API}/reports/monthly", api_report),
        (f"{API}/payments/held", api_held),
    ):
        app.router.add_get(path, handler)
        protect(app, path, "viewer")
    accept = app.router.add_post(f"{API}/payments/held/{{id:\\d+}}/accept", api_accept)
    assert accept.resource is not None
    protect(app, accept.resource.canonical, "operator")
