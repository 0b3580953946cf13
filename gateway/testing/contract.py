"""The connector contract suite: what every connector must do, checked against its simulator.

A connector author runs it from a test module with one class::

    from gateway.testing.contract import ConnectorContract

    class TestContract(ConnectorContract):
        connector_name = "civil_status"      # samples come from the plugin's contract_samples()

or gives the samples in the class (``samples = ContractSamples(...)``). ``gateway plugins
check`` runs the same checks in-process for every connector whose plugin ships a simulator.

The checks (each one a test, each with a readable reason when it fails):

* ``builds`` — the factory builds a connector from the sample ``[systems.X]`` keys;
* ``inbound_samples_parse`` — each inbound sample parses into messages with an event and an
  id, nothing rejected, the same content hash when parsed twice;
* ``outbound_samples_render`` — each outbound message renders into a request to the system's
  ``base_url`` that does not set ``Idempotency-Key`` itself (the core adds it);
* ``outbound_samples_delivered`` — each rendered request, sent to the simulator, is a
  :class:`~gateway.model.Receipt`, and the simulator sees the core's key;
* ``idempotency_key_unchanged_across_resends`` — the same message sent three times under one
  key is acknowledged every time and the simulator sees exactly that key;
* ``classify_http_<status>`` — 408, 429 and 5xx are retryable (with ``Retry-After``), other
  4xx permanent (409 "already received" may be a delivery, and so may the statuses listed
  in ``delivered_statuses``);
* ``classify_transport_errors`` — timeouts, resets, refused connections, cut answers are
  retryable;
* ``send_to_unreachable_system`` — a closed port is a retryable error, quickly;
* ``fault_proxy_<profile>`` — through a :class:`~gateway.testing.faultproxy.FaultProxy` with
  each of :data:`~gateway.testing.faultproxy.PROXY_PROFILES`: delivered, or a retryable error
  (never permanent, never a hang) after which a resend under the same key is delivered;
* ``simulator_profile_<name>`` — the simulator with each fault profile of
  :data:`gateway.testing.faults.PROFILES`: only receipts or retryable errors.

Every send is bounded in time: a send that hangs fails its check as a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import aiohttp
from aiohttp import web

from gateway.config import SystemConfig
from gateway.connector import Connector
from gateway.faults import PROFILES, install_faults
from gateway.hookspecs import ConnectorFactory
from gateway.model import (
    GatewayError,
    Message,
    OutboundRequest,
    ParseResult,
    PermanentError,
    Receipt,
    RetryableError,
    canonical_json,
)
from gateway.plugins import PluginError, Plugins
from gateway.simulation import SimulatorFactory, SimulatorOptions
from gateway.testing.faultproxy import PROXY_PROFILES, FaultProxy
from gateway.testing.sink import Sink

CheckStatus = Literal["pass", "fail", "skip"]
Prepare = Callable[[aiohttp.ClientSession, str], Awaitable[None]]

RETRYABLE_STATUSES = (408, 429, 500, 502, 503, 504)
PERMANENT_STATUSES = (400, 401, 403, 404, 409, 410, 413, 422)
RETRY_AFTER = "7"
#: what each proxy profile must lead to: delivered, or retryable then delivered on resend
PROXY_EXPECT = {
    "none": "delivered",
    "slow": "delivered",
    "reset": "retryable",
    "reset_after_send": "retryable",
    "blackhole": "retryable",
    "half_write": "retryable",
}
#: the attribute of a plugin module that supplies its samples (see :class:`ContractSamples`)
SAMPLES_ATTRIBUTE = "contract_samples"


@dataclass(frozen=True, slots=True)
class InboundSample:
    """A body the system sends to ``POST /inbound/{system}``.

    :param messages: how many messages it must parse into (None: at least one).
    """

    body: bytes
    content_type: str = "application/json"
    messages: int | None = None


@dataclass(slots=True)
class ContractSamples:
    """What a connector's contract run needs from its author.

    :param inbound: bodies the system pushes (empty for a destination-only connector).
    :param outbound: messages routed to the system (empty for a source-only connector).
    :param system: the connector's own ``[systems.X]`` keys (and core keys such as
        ``timeout``); ``base_url`` is always the simulator's.
    :param simulator_extra: ``SimulatorOptions.extra`` for the simulator.
    :param prepare: ``await prepare(session, simulator_url)`` before outbound samples are
        sent (load what they refer to, e.g. the dossier a progress step is about).
    :param delivered_statuses: 4xx answers the connector rightly takes as delivered
        (409 "already received", a 422 refusal routed back as a follow-up, ...).
    """

    inbound: Sequence[InboundSample] = ()
    outbound: Sequence[Message] = ()
    system: Mapping[str, Any] = field(default_factory=dict)
    simulator_extra: Mapping[str, Any] = field(default_factory=dict)
    prepare: Prepare | None = None
    delivered_statuses: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str
    status: CheckStatus
    reason: str = ""
    seconds: float = 0.0


class ContractFailure(AssertionError):
    """A check failed; the message says why."""


class ContractSkip(Exception):
    """A check does not apply (no samples, no simulator); the message says why."""


def check_names() -> list[str]:
    """Every check, in the order they run."""
    return [
        "builds",
        "inbound_samples_parse",
        "outbound_samples_render",
        "outbound_samples_delivered",
        "idempotency_key_unchanged_across_resends",
        *(f"classify_http_{s}" for s in (*RETRYABLE_STATUSES, *PERMANENT_STATUSES)),
        "classify_transport_errors",
        "send_to_unreachable_system",
        *(f"fault_proxy_{name}" for name in PROXY_PROFILES),
        *(f"simulator_profile_{name}" for name in PROFILES),
    ]


# -- servers on loopback ------------------------------------------------------------------------

_SEEN = web.AppKey("contract_seen", list)


@web.middleware
async def _record(request: web.Request, handler: Any) -> web.StreamResponse:
    """Remember every request's path and Idempotency-Key (outermost: before any fault)."""
    request.app[_SEEN].append((request.path, request.headers.get("Idempotency-Key")))
    response: web.StreamResponse = await handler(request)
    return response


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run an app on 127.0.0.1 (any free port); yields its base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    try:
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _scripted(status: int) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        headers = {"Retry-After": RETRY_AFTER} if status in (429, 503) else {}
        return web.json_response(
            {"error": f"scripted {status}", "error_code": str(status), "message": "scripted"},
            status=status,
            headers=headers,
        )

    app = web.Application()
    app[_SEEN] = []
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


def sink_simulator(options: SimulatorOptions) -> web.Application:
    """A simulator for plain-HTTP destinations: the recording :class:`Sink` (accepts every
    request, answers a resent Idempotency-Key as the first time) with the fault middleware."""
    app = Sink().app()
    install_faults(app, options.fault_profile, seed=options.seed)
    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- the runner ---------------------------------------------------------------------------------


class ContractRunner:
    """Runs the contract checks for one connector (in-process; each check bounded in time)."""

    def __init__(
        self,
        connector_name: str,
        factory: ConnectorFactory,
        *,
        samples: ContractSamples | None = None,
        simulator: SimulatorFactory | None = None,
        check_timeout: float = 30.0,
    ) -> None:
        self.connector_name = connector_name
        self.factory = factory
        self.samples = samples
        self.simulator = simulator
        self.check_timeout = check_timeout
        #: set when a send hung: later checks that send are skipped rather than each waiting
        self.hung: str | None = None

    # -- helpers --------------------------------------------------------------------------------
    @property
    def _samples(self) -> ContractSamples:
        return self.samples or ContractSamples()

    def system(self, base_url: str) -> SystemConfig:
        data: dict[str, Any] = {
            "name": self.connector_name,
            "plugin": self.connector_name,
            "timeout": {"connect": 1.0, "read": 1.0},
            **dict(self._samples.system),
            "base_url": base_url,
        }
        return SystemConfig.model_validate(data)

    def connector(self, base_url: str) -> Connector:
        try:
            return self.factory(self.system(base_url))
        except Exception as exc:
            raise ContractFailure(
                f"the connector does not build from the sample [systems.X] keys: "
                f"{type(exc).__name__}: {exc}"
            ) from None

    @property
    def send_timeout(self) -> float:
        t = self.system("http://127.0.0.1:9").timeout
        return 2 * (t.connect + t.read) + 1.0

    async def send(
        self,
        connector: Connector,
        session: aiohttp.ClientSession,
        message: Message,
        key: str,
    ) -> Receipt | GatewayError:
        """What the engine does for one attempt: render, add the key, send — bounded."""
        if self.hung:
            raise ContractSkip(f"not sent: {self.hung}")
        request = await self._render(connector, message)
        request.headers["Idempotency-Key"] = key
        limit = self.send_timeout
        try:
            async with asyncio.timeout(limit):
                return await connector.send(session, request)
        except TimeoutError:
            self.hung = f"an earlier send hung for {limit:g}s"
            raise ContractFailure(
                f"send did not return within {limit:g}s although the system's timeouts are "
                "shorter: a send that hangs holds a delivery slot (honour "
                "self.client_timeout)"
            ) from None
        except GatewayError as exc:
            return exc
        except Exception as exc:
            raise ContractFailure(
                f"send raised {type(exc).__name__}: {exc} — a connector must return a Receipt "
                "or raise RetryableError / PermanentError (see classify_exception)"
            ) from None

    async def _render(self, connector: Connector, message: Message) -> OutboundRequest:
        try:
            request = await connector.render(message)
        except GatewayError as exc:
            raise ContractFailure(
                f"render refused the sample {message.event} {message.external_id}: "
                f"{type(exc).__name__}: {exc.reason}"
            ) from None
        except Exception as exc:
            raise ContractFailure(
                f"render raised {type(exc).__name__}: {exc} "
                f"(sample {message.event} {message.external_id})"
            ) from None
        if not isinstance(request, OutboundRequest):
            raise ContractFailure(f"render returned {type(request).__name__}, not OutboundRequest")
        return request

    def _need_outbound(self) -> Sequence[Message]:
        if not self._samples.outbound:
            raise ContractSkip("no outbound samples (ContractSamples.outbound)")
        return self._samples.outbound

    def _need_simulator(self) -> SimulatorFactory:
        if self.simulator is None:
            raise ContractSkip("the plugin registers no simulator for this connector")
        return self.simulator

    def _simulator_app(self, fault_profile: str = "none") -> web.Application:
        factory = self._need_simulator()
        options = SimulatorOptions(
            system=self.connector_name,
            fault_profile=fault_profile,
            seed=1,
            extra=dict(self._samples.simulator_extra),
        )
        app = factory(options)
        app[_SEEN] = []
        app.middlewares.insert(0, _record)
        return app

    @contextlib.asynccontextmanager
    async def _simulated(self, fault_profile: str = "none") -> AsyncIterator[tuple[str, Any]]:
        """A running simulator (prepared), a client session; yields (url, app)."""
        app = self._simulator_app(fault_profile)
        async with serve(app) as url:
            yield url, app

    async def _prepare(self, session: aiohttp.ClientSession, url: str) -> None:
        if self._samples.prepare is not None:
            await self._samples.prepare(session, url)

    @staticmethod
    def _key(check: str, i: int = 0) -> str:
        return f"contract-{check}-{i}"

    # -- running --------------------------------------------------------------------------------
    def checks(self) -> list[str]:
        return check_names()

    async def run(self, check: str) -> CheckResult:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.check_timeout):
                await self._dispatch(check)
        except ContractSkip as exc:
            return CheckResult(check, "skip", str(exc), time.monotonic() - started)
        except ContractFailure as exc:
            return CheckResult(check, "fail", str(exc), time.monotonic() - started)
        except TimeoutError:
            reason = f"did not finish within {self.check_timeout:g}s (something hangs)"
            return CheckResult(check, "fail", reason, time.monotonic() - started)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            return CheckResult(check, "fail", reason, time.monotonic() - started)
        return CheckResult(check, "pass", "", time.monotonic() - started)

    async def run_all(self) -> list[CheckResult]:
        return [await self.run(check) for check in self.checks()]

    async def _dispatch(self, check: str) -> None:
        if check.startswith("classify_http_"):
            await self.check_classify_http(int(check.removeprefix("classify_http_")))
        elif check.startswith("fault_proxy_"):
            await self.check_fault_proxy(check.removeprefix("fault_proxy_"))
        elif check.startswith("simulator_profile_"):
            await self.check_simulator_profile(check.removeprefix("simulator_profile_"))
        elif check in check_names():
            await getattr(self, f"check_{check}")()
        else:
            raise ContractFailure(f"no contract check named {check!r}")

    # -- the checks ---------------------------------------------------------------------------
    async def check_builds(self) -> None:
        connector = self.connector("http://127.0.0.1:9")
        if not isinstance(connector, Connector):
            raise ContractFailure(
                f"the factory returned {type(connector).__name__}, not a gateway Connector"
            )
        await connector.close()

    async def check_inbound_samples_parse(self) -> None:
        if not self._samples.inbound:
            raise ContractSkip("no inbound samples (ContractSamples.inbound)")
        connector = self.connector("http://127.0.0.1:9")
        for i, sample in enumerate(self._samples.inbound):
            where = f"inbound sample {i}"
            if sample.content_type not in connector.content_types:
                raise ContractFailure(
                    f"{where}: content type {sample.content_type!r} is not in the "
                    f"connector's content_types {connector.content_types}"
                )
            first = await self._parse(connector, sample, where)
            second = await self._parse(connector, sample, where)
            if first.rejected:
                r = first.rejected[0]
                raise ContractFailure(f"{where}: item {r.ref!r} rejected: {'; '.join(r.errors)}")
            wanted = sample.messages
            if (wanted is None and not first.messages) or (
                wanted is not None and len(first.messages) != wanted
            ):
                raise ContractFailure(
                    f"{where}: parsed into {len(first.messages)} message(s), "
                    f"expected {wanted if wanted is not None else 'at least 1'}"
                )
            for m in first.messages:
                if not (isinstance(m, Message) and m.event and m.external_id):
                    raise ContractFailure(f"{where}: a message without event or external_id")
                try:
                    canonical_json(m.payload)
                except (TypeError, ValueError) as exc:
                    raise ContractFailure(f"{where}: payload is not JSON: {exc}") from None
            hashes = [m.content_hash for m in first.messages]
            if hashes != [m.content_hash for m in second.messages]:
                raise ContractFailure(
                    f"{where}: parsing the same body twice gave different payloads "
                    "(dedupe would store a resend twice)"
                )

    @staticmethod
    async def _parse(connector: Connector, sample: InboundSample, where: str) -> ParseResult:
        try:
            result = await connector.parse(sample.body, sample.content_type)
        except Exception as exc:
            raise ContractFailure(f"{where}: parse raised {type(exc).__name__}: {exc}") from None
        if not isinstance(result, ParseResult):
            raise ContractFailure(f"{where}: parse returned {type(result).__name__}")
        return result

    async def check_outbound_samples_render(self) -> None:
        base = "http://127.0.0.1:9/base"
        connector = self.connector(base)
        for message in self._need_outbound():
            request = await self._render(connector, message)
            if not request.method or not request.url.startswith(base):
                raise ContractFailure(
                    f"{message.event}: rendered {request.method} {request.url}, not a request "
                    f"under base_url {base}"
                )
            if any(h.lower() == "idempotency-key" for h in request.headers):
                raise ContractFailure(
                    f"{message.event}: render sets Idempotency-Key itself; the core adds it"
                )

    async def check_outbound_samples_delivered(self) -> None:
        outbound = self._need_outbound()
        async with self._simulated() as (url, app), aiohttp.ClientSession() as session:
            await self._prepare(session, url)
            connector = self.connector(url)
            for i, message in enumerate(outbound):
                key = self._key("delivered", i)
                outcome = await self.send(connector, session, message, key)
                if not isinstance(outcome, Receipt):
                    raise ContractFailure(
                        f"{message.event} {message.external_id}: the simulator did not take "
                        f"it: {type(outcome).__name__}: {outcome.reason}"
                    )
                keys = [k for _, k in app[_SEEN] if k is not None]
                if key not in keys:
                    raise ContractFailure(
                        f"{message.event}: the simulator never saw Idempotency-Key {key!r} "
                        f"(it saw {sorted(set(keys))}): send must pass request.headers on"
                    )
            await connector.close()

    async def check_idempotency_key_unchanged_across_resends(self) -> None:
        message = self._need_outbound()[0]
        key = self._key("resend")
        async with self._simulated() as (url, app), aiohttp.ClientSession() as session:
            await self._prepare(session, url)
            connector = self.connector(url)
            for attempt in (1, 2, 3):
                outcome = await self.send(connector, session, message, key)
                if not isinstance(outcome, Receipt):
                    raise ContractFailure(
                        f"resend {attempt} under the same key was not acknowledged: "
                        f"{type(outcome).__name__}: {outcome.reason}"
                    )
            await connector.close()
            keys = [k for _, k in app[_SEEN] if k is not None]
            if set(keys) != {key} or len(keys) < 3:
                raise ContractFailure(
                    f"the simulator saw keys {keys}; expected {key!r} on each of 3 sends"
                )

    async def check_classify_http(self, status: int) -> None:
        # 409 "already received" is how an idempotent receiver answers a resend
        delivered = status == 409 or status in self._samples.delivered_statuses
        if self._samples.outbound:
            async with serve(_scripted(status)) as url, aiohttp.ClientSession() as session:
                connector = self.connector(url)
                message = self._samples.outbound[0]
                outcome = await self.send(connector, session, message, self._key("http"))
                await connector.close()
        else:
            connector = self.connector("http://127.0.0.1:9")
            request = OutboundRequest("POST", "http://127.0.0.1:9/")
            headers = {"Retry-After": RETRY_AFTER} if status in (429, 503) else {}
            try:
                outcome = connector.classify_response(status, b"scripted", headers, request)
            except GatewayError as exc:
                outcome = exc
        got = type(outcome).__name__
        if status in RETRYABLE_STATUSES:
            if not isinstance(outcome, RetryableError):
                raise ContractFailure(f"HTTP {status} must be retryable, got {got}")
            if status == 429 and outcome.retry_after != float(RETRY_AFTER):
                raise ContractFailure(
                    f"HTTP 429 with Retry-After: {RETRY_AFTER} gave retry_after="
                    f"{outcome.retry_after}; keep the server's wish"
                )
        elif delivered:
            if not isinstance(outcome, Receipt | PermanentError):
                raise ContractFailure(f"HTTP {status} is listed as delivered, got {got}")
        elif not isinstance(outcome, PermanentError):
            detail = f": {outcome.reason}" if isinstance(outcome, GatewayError) else ""
            raise ContractFailure(f"HTTP {status} must be permanent, got {got}{detail}")

    async def check_classify_transport_errors(self) -> None:
        connector = self.connector("http://127.0.0.1:9")
        for exc in (
            TimeoutError(),
            ConnectionResetError(104, "Connection reset by peer"),
            ConnectionRefusedError(111, "Connection refused"),
            aiohttp.ServerDisconnectedError(),
            aiohttp.ClientPayloadError("Response payload is not completed"),
        ):
            try:
                result = connector.classify_exception(exc)
            except Exception as raised:
                raise ContractFailure(
                    f"classify_exception({type(exc).__name__}) raised {raised!r}"
                ) from None
            if not isinstance(result, RetryableError):
                raise ContractFailure(
                    f"{type(exc).__name__} must be retryable, got {type(result).__name__}"
                )

    async def check_send_to_unreachable_system(self) -> None:
        message = self._need_outbound()[0]
        async with aiohttp.ClientSession() as session:
            connector = self.connector(f"http://127.0.0.1:{_free_port()}")
            outcome = await self.send(connector, session, message, self._key("unreachable"))
            await connector.close()
        if not isinstance(outcome, RetryableError):
            raise ContractFailure(
                f"a refused connection must be retryable, got {type(outcome).__name__}"
            )

    async def check_fault_proxy(self, profile: str) -> None:
        message = self._need_outbound()[0]
        expect = PROXY_EXPECT.get(profile, "retryable or delivered")
        async with (
            self._simulated() as (url, app),
            aiohttp.ClientSession() as session,
        ):
            await self._prepare(session, url)
            host, _, port = url.removeprefix("http://").partition(":")
            async with FaultProxy(host, int(port), seed=1, **PROXY_PROFILES[profile]) as proxy:
                connector = self.connector(proxy.url)
                key = self._key(f"proxy-{profile}")
                outcome = await self.send(connector, session, message, key)
                got = _describe(outcome)
                if expect == "delivered" and not isinstance(outcome, Receipt):
                    raise ContractFailure(f"through a {profile!r} link: expected delivered, {got}")
                if isinstance(outcome, PermanentError):
                    raise ContractFailure(
                        f"through a {profile!r} link: a link fault must never be permanent, {got}"
                    )
                if expect == "retryable" and not isinstance(outcome, RetryableError):
                    raise ContractFailure(f"through a {profile!r} link: expected retryable, {got}")
                proxy.set(**PROXY_PROFILES["none"])
                again = await self.send(connector, session, message, key)
                if not isinstance(again, Receipt):
                    raise ContractFailure(
                        f"after the {profile!r} link healed, the resend under the same key was "
                        f"not delivered: {_describe(again)}"
                    )
                await connector.close()
            keys = {k for _, k in app[_SEEN] if k is not None}
            if keys - {key}:
                raise ContractFailure(f"the simulator saw other keys than {key!r}: {keys}")

    async def check_simulator_profile(self, profile: str) -> None:
        message = self._need_outbound()[0]
        async with self._simulated(profile) as (url, _app), aiohttp.ClientSession() as session:
            try:
                await self._prepare(session, url)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise ContractSkip(
                    f"the simulator could not be prepared under {profile}: {exc}"
                ) from None
            connector = self.connector(url)
            outcome = await self.send(connector, session, message, self._key(profile))
            await connector.close()
        if profile == "none" and not isinstance(outcome, Receipt):
            raise ContractFailure(f"without faults: expected delivered, {_describe(outcome)}")
        if not isinstance(outcome, Receipt | RetryableError):
            raise ContractFailure(
                f"under the simulator's {profile!r} faults: {_describe(outcome)} (faults of the "
                "link or the system must be retryable)"
            )


def _describe(outcome: Receipt | GatewayError) -> str:
    if isinstance(outcome, Receipt):
        return f"got a Receipt (HTTP {outcome.status})"
    return f"got {type(outcome).__name__}: {outcome.reason}"


# -- finding a plugin's samples and simulator ---------------------------------------------------


def plugin_samples(plugins: Plugins, connector_name: str) -> ContractSamples | None:
    """The samples a plugin module supplies through ``contract_samples()``: a
    :class:`ContractSamples`, or a mapping of connector names to them."""
    registered = plugins.connectors().get(connector_name)
    if registered is None:
        return None
    module = plugins.pm.get_plugin(registered.plugin)
    supplier = getattr(module, SAMPLES_ATTRIBUTE, None)
    if not callable(supplier):
        return None
    supplied = supplier()
    if isinstance(supplied, Mapping):
        found = supplied.get(connector_name)
        return found if isinstance(found, ContractSamples) else None
    return supplied if isinstance(supplied, ContractSamples) else None


def runner_for(
    plugins: Plugins,
    connector_name: str,
    *,
    samples: ContractSamples | None = None,
    simulator: SimulatorFactory | None = None,
    check_timeout: float = 30.0,
) -> ContractRunner:
    """A runner for a registered connector: its factory, its plugin's samples and simulator
    unless given."""
    factory = plugins.connector_factory(connector_name)
    if simulator is None and connector_name in plugins.simulators():
        simulator = plugins.simulator_factory(connector_name)
    return ContractRunner(
        connector_name,
        factory,
        samples=samples if samples is not None else plugin_samples(plugins, connector_name),
        simulator=simulator,
        check_timeout=check_timeout,
    )


# -- the pytest face ----------------------------------------------------------------------------


_RUNNERS: dict[type, ContractRunner] = {}


class ConnectorContract:
    """Subclass in a test module (name it ``Test...``) to run the contract as tests.

    Class attributes: ``connector_name`` (required); ``samples`` (default: the plugin's
    ``contract_samples()``); ``simulator`` (default: the simulator the plugin registers; use
    :func:`sink_simulator` for a plain-HTTP destination); ``extra_plugins`` (``(name,
    plugin)`` pairs to register, for a plugin that is not installed); ``check_timeout``.
    The tests are synchronous (each runs its own event loop), so they need no asyncio
    plugin and work in any pytest configuration.
    """

    connector_name: ClassVar[str] = ""
    samples: ClassVar[ContractSamples | None] = None
    simulator: ClassVar[SimulatorFactory | None] = None
    extra_plugins: ClassVar[Sequence[tuple[str, object]]] = ()
    check_timeout: ClassVar[float] = 30.0

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "contract_check" in metafunc.fixturenames:
            names = check_names()
            metafunc.parametrize("contract_check", names, ids=names)

    @classmethod
    def contract_runner(cls) -> ContractRunner:
        """One runner per class (a send that hangs is waited for once, not in every test)."""
        runner = _RUNNERS.get(cls)
        if runner is None:
            runner = _RUNNERS[cls] = cls._new_runner()
        return runner

    @classmethod
    def _new_runner(cls) -> ContractRunner:
        from gateway.plugins import build_plugins

        if not cls.connector_name:
            raise PluginError(f"{cls.__name__}: set connector_name")
        plugins = build_plugins(extra=cls.extra_plugins)
        simulator = vars_lookup(cls, "simulator")
        return runner_for(
            plugins,
            cls.connector_name,
            samples=cls.samples,
            simulator=simulator,
            check_timeout=cls.check_timeout,
        )

    def test_contract(self, contract_check: str) -> None:
        import pytest

        result = asyncio.run(self.contract_runner().run(contract_check))
        if result.status == "skip":
            pytest.skip(result.reason)
        if result.status == "fail":
            pytest.fail(f"{self.connector_name}: {contract_check}: {result.reason}", pytrace=False)


def vars_lookup(cls: type, name: str) -> Any:
    """A class attribute as stored (a plain function stays a function, not a method)."""
    for klass in cls.__mro__:
        if name in klass.__dict__:
            value = klass.__dict__[name]
            return value.__func__ if isinstance(value, staticmethod) else value
    return None
