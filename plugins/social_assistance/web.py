"""Dashboard pages and admin API of the social-assistance plugin.

Pages (admin framework: :func:`protect`, :data:`NAV`, :func:`render_page`):
``/payments`` (lists of a month per commune, delivery and reconciliation status, and an
alert for every commune whose list of a month is not built or sent yet; an operator can
build and send a month again from it: ``POST /payments/send``, CSRF-protected, audited),
``/payments/held`` (held decisions; an operator accepts one figure, CSRF-protected and
audited), ``/payments/candidates``, ``/payments/timeliness``. API: ``GET /api/v1/payments``,
``GET /api/v1/reports/monthly``, ``GET /api/v1/payments/held``,
``POST /api/v1/payments/held/{id}/accept``. Personal data is masked for every role.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import jinja2
from aiohttp import web
from prometheus_client import Gauge

from gateway.api import (
    LANGS,
    MESSAGES,
    ApiError,
    ConfigError,
    Gateway,
    NavEntry,
    add_nav,
    add_templates,
    column_chart,
    config_of,
    connectors_of,
    format_compact,
    format_date,
    format_money,
    format_month,
    format_number,
    get_logger,
    hbar_chart,
    lang_of,
    mask_name,
    metrics_registry_of,
    principal,
    protect,
    render_page,
    store_of,
    translate,
)
from gateway.model import VN_TZ, now_vn
from plugins.social_assistance import demo, documents, service
from plugins.social_assistance.connector import SocialAssistanceConnector
from plugins.social_assistance.labels import bien_dong_label, category_label, commune_label
from plugins.social_assistance.month import Month
from plugins.social_assistance.storage import (
    AcceptError,
    Domain,
    accept_decision,
    load_domain,
    read,
)
from plugins.vn_common.cccd import mask_cccd

log = get_logger("plugins.social_assistance.web")
DOMAIN = web.AppKey("social_assistance_domain", Domain)
GAUGE = web.AppKey("social_assistance_gauge", Gauge)
API = "/api/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: the pages' strings, from the dashboard's one catalogue (keys ``sa_*`` there)
TEXT: dict[str, dict[str, str]] = {
    lang: {k[3:]: v for k, v in MESSAGES[lang].items() if k.startswith("sa_")} for lang in LANGS
}
_DUMPS = functools.partial(json.dumps, ensure_ascii=False)  # Vietnamese as itself, not \\u


def _domain(app: web.Application) -> Domain:
    """The settings, rules and admin units, read again when a file was edited (a corrected
    code in admin_units.toml counts from the next page, send or job run, without a restart);
    the last good ones while an edited file does not load."""
    found = app.get(DOMAIN)
    if found is None:
        found = load_domain(config_of(app))
        app[DOMAIN] = found
        return found
    try:
        return load_domain(config_of(app))
    except ConfigError as exc:
        log.warning("sa_config_unreadable", error=str(exc), using="the last good files")
        return found


async def startup(app: web.Application) -> None:
    """Attach the connector(s) to the store and the rules; publish list totals."""
    domain = _domain(app)
    store = store_of(app)
    for connector in connectors_of(app).values():
        if isinstance(connector, SocialAssistanceConnector):
            connector.attach(store, domain)
    if demo.STATE not in app:
        app[demo.STATE] = demo.DemoState()  # gateway demo's part (the app takes no keys later)
    if GAUGE not in app:
        app[GAUGE] = Gauge(
            "gateway_payment_list_vnd",
            "Total VND of the latest payment lists of a month (all communes)",
            ["ky"],
            registry=metrics_registry_of(app),
        )
    await refresh_metric(app)


async def refresh_metric(app: web.Application) -> None:
    gauge = app.get(GAUGE)
    if gauge is None:
        return
    for ky, total in (await service.list_totals(store_of(app))).items():
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


async def _charts(
    store: Any, domain: Domain, month: Month, rows: list[dict[str, Any]], lang: str
) -> dict[str, Any]:
    """The payments page's pictures: the month's money per commune and per category, and the
    totals of the last 12 months (server-rendered SVG, with tables as text alternatives)."""
    totals = await service.list_totals(store)
    report = await service.monthly(store, domain, month) if rows else {}
    units, rules = domain.admin_units, domain.rules
    for r in rows:
        r["commune"] = commune_label(units, r["maXa"], month, lang)
    categories = sorted((report.get("by_category") or {}).items())
    last12 = [str(month + k) for k in range(-11, 1)]
    return {
        "picker": _month_nav(month, list(totals), lang),
        "by_commune": hbar_chart(
            [(r["commune"], r["total"], format_money(r["total"], lang)) for r in rows]
        ),
        "by_category": hbar_chart(
            [
                (category_label(rules, code, lang), t["amount"], format_money(t["amount"], lang))
                for code, t in categories
            ]
        ),
        "months_chart": column_chart(
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
        ),
        "changes": [
            (bien_dong_label(k, lang), n)
            for k, n in sorted((report.get("changes") or {}).items())
            if n
        ],
        "month_total": sum(r["total"] for r in rows),
    }


# -- pages ----------------------------------------------------------------------------------------
async def payments_page(request: web.Request) -> web.Response:
    month = _month(request, api=False)
    store = store_of(request.app)
    rows = await service.overview(store, _domain(request.app), month)
    lang = lang_of(request)
    alerts = [_alert_view(a, lang) for a in await service.open_alerts(store)]
    pictures = await _charts(store, _domain(request.app), month, rows, lang)
    await refresh_metric(request.app)
    flash = None
    if "sent" in request.query and "unpaid" in request.query:
        flash = {k: request.query.get(k, "") for k in ("ky", "sent", "unpaid")}
    return await render_page(
        request,
        "sa_payments.html",
        _ctx(
            request,
            month=month,
            rows=rows,
            alerts=alerts,
            flash=flash,
            can_names=principal(request).can(LIST_ROLE),
            list_url=_list_url,
            **pictures,
        ),
    )


def _alert_view(row: dict[str, Any], lang: str) -> dict[str, Any]:
    """An open alert as the page shows it: the month's last retry day, times in Vietnam."""
    ky = Month.parse(str(row["ky"]))
    last = (ky.first_day - timedelta(days=1)).isoformat()
    at = datetime.fromtimestamp(float(row["last_attempt_at"]), VN_TZ)
    return {
        **row,
        "amount_text": format_money(int(row["amount"]), lang),
        "last_day": format_date(last, lang),
        "at": at.strftime("%Y-%m-%d %H:%M"),
    }


async def send_form(request: web.Request) -> web.Response:
    """An operator builds and sends a month's lists from the dashboard (audited)."""
    form = await request.post()
    try:
        month = Month.parse(str(form.get("month", "")))
        if not MIN_YEAR <= month.year <= MAX_YEAR:
            raise ValueError(month)
    except ValueError:
        return await render_page(
            request,
            "sa_message.html",
            _ctx(
                request,
                text=translate(
                    lang_of(request), "sa_bad_month", first=f"{MIN_YEAR}-01", last=f"{MAX_YEAR}-12"
                ),
            ),
            status=400,
        )
    app = request.app
    who = principal(request)
    gw = Gateway.of(app)
    results = await service.send_month(
        gw.store, gw.config, gw.plugins, _domain(app), month, actor=who.actor
    )
    sent = sum(r.status == "sent" for r in results)
    unpaid = sum(r.unpaid for r in results)
    if sent:
        gw.wake()
    await refresh_metric(app)
    raise web.HTTPSeeOther(f"/payments?month={month}&ky={month}&sent={sent}&unpaid={unpaid}")


# -- documents: the signing lists (named: LIST_ROLE) and the monthly report -------------------
LIST_ROLE: Literal["operator"] = "operator"
"""Who may download or print a list: it names every payee (the office signs it)."""
STATIC = Path(__file__).parent / "static"


def _list_url(ky: str, commune: str, suffix: str = "") -> str:
    return f"/payments/lists/{ky}/{commune}{suffix}"


def _vnd(amount: int | None) -> str:
    """1234567 -> 1.234.567 (Vietnamese grouping) for the print page."""
    return "" if amount is None else format_number(amount, "vi")


async def _list_document(request: web.Request) -> documents.ListDocument | None:
    try:
        month = Month.parse(request.match_info["ky"])
    except ValueError:
        raise _BadMonth from None
    commune = request.match_info["commune"]
    return await read(
        store_of(request.app),
        documents.read_list_document,
        _domain(request.app),
        str(month),
        commune,
    )


async def _no_list(request: web.Request) -> web.Response:
    text = TEXT[lang_of(request) if lang_of(request) in TEXT else "vi"]["no_list"]
    return await render_page(request, "sa_message.html", _ctx(request, text=text), status=404)


async def _audit_download(request: web.Request, doc: documents.ListDocument, fmt: str) -> None:
    who = principal(request)
    target = f"payment list {doc.ky}:{doc.commune}"
    await store_of(request.app).audit(who.actor, "download", target, fmt)
    log.info("sa_list_downloaded", ky=str(doc.ky), commune=doc.commune, fmt=fmt, actor=who.actor)


async def list_xlsx_handler(request: web.Request) -> web.Response:
    doc = await _list_document(request)
    if doc is None:
        return await _no_list(request)
    # a big commune's workbook takes a moment to write: off the event loop
    body = await asyncio.to_thread(
        documents.list_xlsx, doc, preparer=principal(request).name, when=now_vn()
    )
    await _audit_download(request, doc, "xlsx")
    return _attachment(body, doc.file_name)


def _attachment(body: bytes, name: str) -> web.Response:
    return web.Response(
        body=body,
        content_type=documents.XLSX_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


async def list_print_page(request: web.Request) -> web.Response:
    doc = await _list_document(request)
    if doc is None:
        return await _no_list(request)
    await _audit_download(request, doc, "print")
    return await render_page(
        request,
        "sa_list_print.html",
        _ctx(
            request,
            doc=doc,
            vnd=_vnd,
            preparer=principal(request).name,
            today=documents.vn_date(now_vn()),
            xlsx_url=_list_url(str(doc.ky), doc.commune, ".xlsx"),
        ),
    )


async def report_xlsx_handler(request: web.Request) -> web.Response:
    month = _month(request, api=False)
    domain = _domain(request.app)
    data = await service.monthly(store_of(request.app), domain, month)
    body = await asyncio.to_thread(
        documents.report_xlsx,
        data,
        month,
        names=documents.report_names(domain, data, month),
        preparer=principal(request).name,
        when=now_vn(),
    )
    return _attachment(body, f"bao-cao-thang-{month}.xlsx")


async def print_css(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "sa_print.css", headers={"Cache-Control": "max-age=3600"})


async def held_page(request: web.Request) -> web.Response:
    rows = await service.held(store_of(request.app))
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
    result: dict[str, Any] = await store_of(request.app).write(
        accept_decision, row_id, figure, who.actor, time.time()
    )
    log.info("sa_decision_accepted", id=row_id, figure=figure, actor=who.actor)
    return result


async def candidates_page(request: web.Request) -> web.Response:
    month = _month(request, api=False)
    domain = _domain(request.app)
    found = await service.candidates(store_of(request.app), domain, month)
    lang = lang_of(request)
    rows = [
        {
            "maXa": c["maXa"],
            "commune": commune_label(domain.admin_units, c["maXa"], month, lang),
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
    report = await service.monthly(store_of(request.app), _domain(request.app), month)
    return await render_page(
        request, "sa_timeliness.html", _ctx(request, month=month, t_data=report["timeliness"])
    )


# -- API ------------------------------------------------------------------------------------------
async def api_payments(request: web.Request) -> web.Response:
    month = _month(request, api=True)
    rows = await service.overview(store_of(request.app), _domain(request.app), month)
    return web.json_response({"month": str(month), "lists": rows}, dumps=_DUMPS)


async def api_report(request: web.Request) -> web.Response:
    month = _month(request, api=True)
    report = await service.monthly(store_of(request.app), _domain(request.app), month)
    return web.json_response({"month": str(month), "report": report}, dumps=_DUMPS)


async def api_held(request: web.Request) -> web.Response:
    return web.json_response({"held": await service.held(store_of(request.app))}, dumps=_DUMPS)


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
    here = Path(__file__).parent / "templates"
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
    ky, commune = "{ky:\\d{4}-\\d{2}}", "{commune:\\d{5}}"
    documents_routes: list[tuple[str, str, Handler, Literal["viewer", "operator"]]] = [
        (_list_url(ky, commune), _list_url("{ky}", "{commune}"), list_print_page, LIST_ROLE),
        (
            _list_url(ky, commune, ".xlsx"),
            _list_url("{ky}", "{commune}", ".xlsx"),
            list_xlsx_handler,
            LIST_ROLE,
        ),
        ("/payments/report.xlsx", "/payments/report.xlsx", report_xlsx_handler, "viewer"),
    ]
    for path, canonical, doc_handler, role in documents_routes:
        app.router.add_get(path, _page(doc_handler))
        protect(app, canonical, role)
    app.router.add_get("/payments/print.css", print_css)
    protect(app, "/payments/print.css", "public")
    add_nav(app, NavEntry("/payments", {lang: TEXT[lang]["payments"] for lang in LANGS}))
    app.router.add_post("/payments/held/accept", held_accept_form)
    protect(app, "/payments/held/accept", "operator")
    app.router.add_post("/payments/send", send_form)
    protect(app, "/payments/send", "operator")
    for path, handler in (
        (f"{API}/payments", api_payments),
        (f"{API}/reports/monthly", api_report),
        (f"{API}/payments/held", api_held),
    ):
        app.router.add_get(path, handler)
        protect(app, path, "viewer")
    app.router.add_post(f"{API}/payments/held/{{id:\\d+}}/accept", api_accept)
    protect(app, f"{API}/payments/held/{{id}}/accept", "operator")
