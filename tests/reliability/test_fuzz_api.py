"""Schemathesis against the committed OpenAPI document of the admin API (``/api/v1``), on a
``gateway run`` child with tokens and some deliveries (delivered and dead) in its store.

Every generated request is sent with the admin token. The gateway must never answer 5xx,
never take longer than :data:`HANG_SECONDS`, and still be alive at the end; the answers must
conform to the document (schemathesis's checks). CI runs a bounded sample per operation;
``RELIABILITY_LONG=1`` runs many more.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, unsupported_method
from schemathesis.core.parameters import ParameterLocation

from gateway.signing import sign
from gateway.testing.admin import bearer, token_config

from .reliability_kit import (
    LONG,
    ROOT,
    SECRET,
    free_port,
    gateway_config,
    start_child,
    stop_child,
    to_toml,
)

OPENAPI = ROOT / "gateway" / "web" / "openapi.json"
HANG_SECONDS = 10.0
EXAMPLES = 800 if LONG else 25
CONFORMANCE_EXAMPLES = 100
SETTINGS: dict[str, Any] = {
    "deadline": None,
    "derandomize": not LONG,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}
schema = schemathesis.openapi.from_path(OPENAPI)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass
class ApiTarget:
    url: str
    proc: Any
    statuses: Counter[int] = field(default_factory=Counter)
    cases: int = 0
    conformance_cases: int = 0
    slowest: float = 0.0


def seed(url: str) -> None:
    for i in range(6):
        body = json.dumps({"id": f"A{i}", "key": f"000.00.12.H06-200803-{i:04d}"}).encode()
        request = urllib.request.Request(
            f"{url}/inbound/src",
            data=body,
            headers={"Content-Type": "application/json", **sign(SECRET, body)},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 202


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiTarget]:
    directory: Path = tmp_path_factory.mktemp("api")
    port, nowhere = free_port(), free_port()
    data = gateway_config(
        directory,
        port,
        {"dst": f"http://127.0.0.1:{nowhere}"},
        system={"retry": {"initial": 0.1, "max": 0.2, "jitter": 0, "deadline": 1}},
        extra={"tokens": token_config()},
    )
    config = directory / "gateway.toml"
    config.write_text(to_toml(data), encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    proc = start_child(["run", "--config", str(config)], "api-gw", f"{url}/healthz")
    try:
        seed(url)
        time.sleep(2.0)  # the deliveries to nowhere reach their deadline: dead letters
        yield ApiTarget(url, proc)
    finally:
        stop_child(proc)


@schema.parametrize()
@settings(max_examples=EXAMPLES, **SETTINGS)
def test_admin_api_never_fails_under_schemathesis(case: Any, api: ApiTarget) -> None:
    """No 5xx, no hang, no crash: the robustness checks only, so every example is sent."""
    t0 = time.monotonic()
    try:
        response = case.call(base_url=api.url, headers=bearer("admin"), timeout=HANG_SECONDS)
    finally:
        api.cases += 1
        api.slowest = max(api.slowest, time.monotonic() - t0)
    api.statuses[response.status_code] += 1  # counted before the check can fail
    assert api.proc.poll() is None, "the gateway died"
    case.validate_response(response, checks=[not_a_server_error])


@pytest.mark.skipif(
    not LONG,
    reason="the long run only (100 generated cases per operation)",
)
@schema.parametrize()
@settings(max_examples=CONFORMANCE_EXAMPLES, **SETTINGS)
def test_admin_api_answers_conform_to_its_document(case: Any, api: ApiTarget) -> None:
    """Every schemathesis check but the undeclared-method one (a test of its own below):
    statuses, content types, schemas and headers as documented."""
    api.conformance_cases += 1
    case.call_and_validate(
        base_url=api.url,
        headers=None if _negative_headers(case) else bearer("admin"),
        timeout=HANG_SECONDS,
        excluded_checks=[unsupported_method],
    )


def _negative_headers(case: Any) -> bool:
    """A case generated to break the headers (no or a malformed ``Authorization``) is sent as
    generated: adding the admin token would turn it into a valid request, and the gateway's 401
    is what is checked."""
    meta = getattr(case, "meta", None)
    component = meta.components.get(ParameterLocation.HEADER) if meta is not None else None
    return component is not None and component.mode == GenerationMode.NEGATIVE


def test_an_undeclared_method_is_405_with_allow(api: ApiTarget) -> None:
    """RFC 9110 §15.5.6: a 405 answer carries ``Allow`` (schemathesis check ST204)."""
    missing = []
    for path in ("/api/v1/systems", "/api/v1/deliveries", "/api/v1/deliveries/retry"):
        request = urllib.request.Request(api.url + path, method="TRACE", headers=bearer("admin"))
        try:
            urllib.request.urlopen(request, timeout=5)
        except urllib.error.HTTPError as exc:
            if exc.code != 405 or not exc.headers.get("Allow"):
                missing.append(f"TRACE {path}: {exc.code}, Allow={exc.headers.get('Allow')}")
    assert not missing, missing


def test_after_schemathesis_the_gateway_is_alive(api: ApiTarget, tally: Any) -> None:
    with urllib.request.urlopen(f"{api.url}/healthz", timeout=5) as r:
        healthy = r.status == 200
    five = sum(n for s, n in api.statuses.items() if s >= 500)
    tally.add(
        "The admin API never fails on what it is sent (no 5xx, no crash, no hang)",
        "schemathesis: requests generated from the committed OpenAPI document, every "
        "operation, with the admin token, against a `gateway run` child",
        api.cases,
        "cases",
        f"answers {dict(sorted(api.statuses.items()))}; slowest {api.slowest:.2f} s; "
        f"gateway {'alive' if healthy else 'DEAD'}",
        ok=healthy and five == 0 and api.proc.poll() is None,
    )
    assert healthy and api.proc.poll() is None
    assert five == 0, api.statuses
