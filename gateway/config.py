"""Configuration: one TOML file validated into typed models.

Secrets are never literal in shipped files: any value may be ``{"$env": "NAME"}`` or
``{"$file": "path"}`` and is resolved at load time. A bad file stops start-up with one line
naming the file, the key and the problem (:class:`ConfigError`).
"""

from __future__ import annotations

import ipaddress
import math
import os
import socket
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

DEFAULT_CONFIG_PATH = Path("config/gateway.toml")


class ConfigError(Exception):
    """A configuration problem; ``str()`` is one readable line: file, key, problem."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + problem)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySection(_Strict):
    listen: str = "127.0.0.1:8080"
    database: str = "sqlite:///var/gateway.db"
    node_id: str = Field(default_factory=socket.gethostname)
    lease_seconds: float = Field(default=120.0, gt=1)
    poll_interval: float = Field(default=0.5, gt=0)
    shutdown_grace: float = Field(default=10.0, ge=0)
    plugins_dir: str | None = None
    log_format: Literal["json", "console"] = "json"
    log_retention_days: int | None = Field(default=None, gt=0)
    #: PostgreSQL: wake idle nodes with LISTEN/NOTIFY when another node commits work
    #: (polling goes on as the fallback); ignored on SQLite
    notify: bool = False
    #: seconds without a heartbeat after which the other nodes take a node's deliveries and
    #: schedules over (and fence it: it may no longer record what it was doing)
    node_timeout: float = Field(default=10.0, gt=0, le=3600)
    #: seconds between heartbeats (and between checks for silent nodes); below node_timeout
    heartbeat_interval: float = Field(default=2.0, gt=0)
    #: HMAC key of dashboard session cookies; shared by every node behind one address.
    #: Unset: a random key per process (sessions end when the process restarts).
    session_secret: SecretStr | None = None
    #: mark every dashboard cookie ``Secure`` (set it when TLS ends at a proxy or balancer)
    secure_cookies: bool = False
    #: addresses or networks of proxies whose ``X-Forwarded-Proto: https`` is believed (the
    #: dashboard's cookies are then ``Secure`` for requests they forward)
    trusted_proxies: list[str] = []

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for entry in v:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return v

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("must be HOST:PORT, for example 127.0.0.1:8080")
        return v

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class LimitsSection(_Strict):
    max_body_bytes: int = Field(default=10_485_760, gt=0)
    queue_bound: int = Field(default=200_000, gt=0)
    max_clock_skew: int = Field(default=300, gt=0)
    #: seconds a connection may stay idle or take to send a request's headers (slowloris)
    client_idle_timeout: float = Field(default=15.0, gt=0)
    #: seconds a client may take to send an inbound body once its headers arrived
    body_timeout: float = Field(default=20.0, gt=0)
    #: bytes of inbound bodies not yet verified (HMAC) held in memory at once, across all
    #: requests (default 2 × max_body_bytes) and per system (default max_body_bytes); beyond
    #: them intake answers 503 with Retry-After before reading. A body sent without
    #: Content-Length counts as max_body_bytes while it is read.
    unsigned_bytes: int | None = Field(default=None, gt=0)
    unsigned_bytes_per_system: int | None = Field(default=None, gt=0)
    #: nesting depth of an inbound item's JSON beyond which it is refused (400)
    max_nesting_depth: int = Field(default=32, ge=4, le=256)

    @property
    def unsigned_total(self) -> int:
        return self.unsigned_bytes or 2 * self.max_body_bytes

    @property
    def unsigned_per_system(self) -> int:
        return self.unsigned_bytes_per_system or self.max_body_bytes


class TokenSection(_Strict):
    name: str
    role: Literal["viewer", "operator", "admin"]
    token_sha256: str | None = None
    token: SecretStr | None = None


class Timeouts(_Strict):
    connect: float = Field(default=5.0, gt=0)
    read: float = Field(default=30.0, gt=0)


class RetryPolicy(_Strict):
    """Exponential backoff with jitter, a cap and a deadline (seconds)."""

    initial: float = Field(default=1.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    max: float = Field(default=600.0, gt=0)
    jitter: float = Field(default=1.0, ge=0)
    deadline: float = Field(default=259_200.0, gt=0)


class BreakerPolicy(_Strict):
    failures: int = Field(default=5, gt=0)
    reset_after: float = Field(default=30.0, gt=0)


class TlsSettings(_Strict):
    verify: bool = True
    ca_bundle: str = ""
    client_cert: str = ""
    client_key: str = ""


class SystemConfig(BaseModel):
    """One external system. Keys not listed here belong to the connector plugin, which
    validates them with its own model (see :attr:`options`)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = ""
    plugin: str
    base_url: str = ""
    inbound_secret: SecretStr | None = None
    timeout: Timeouts = Timeouts()
    concurrency: int = Field(default=4, gt=0)
    rate_limit: float | None = Field(default=None, gt=0, description="requests per second")
    retry: RetryPolicy = RetryPolicy()
    breaker: BreakerPolicy = BreakerPolicy()
    tls: TlsSettings = TlsSettings()
    proxy: str = ""
    poll_interval: float | None = Field(default=None, gt=0)
    #: a 3xx answer is never followed (the document would go to another host); it fails the
    #: attempt, for good (``permanent``) or to be tried again later (``retry``)
    redirects: Literal["permanent", "retry"] = "permanent"

    @property
    def options(self) -> dict[str, Any]:
        """The connector's own keys (everything not a core key)."""
        return dict(self.model_extra or {})


class RouteConfig(_Strict):
    from_: str = Field(alias="from")
    event: str
    procedure: str | None = None
    to: list[str] = Field(min_length=1)


class Config(BaseModel):
    """The validated configuration; a plugin reads its own section with ``plugin_settings``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    gateway: GatewaySection = GatewaySection()
    limits: LimitsSection = LimitsSection()
    tokens: list[TokenSection] = []
    systems: dict[str, SystemConfig] = {}
    routes: list[RouteConfig] = []
    path: str = Field(default="<memory>", exclude=True)
    base_dir: str = Field(default=".", exclude=True)

    def plugin_section(self, name: str) -> dict[str, Any]:
        """A plugin's own top-level table (for example ``[social_assistance]``)."""
        value = (self.model_extra or {}).get(name, {})
        return dict(value) if isinstance(value, dict) else {}

    def resolve_path(self, value: str) -> Path:
        """A path from the config, relative to the directory the config file is in."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p


class _Unset:
    """A secret a read-only command did not need and could not resolve (dropped)."""


_UNSET = _Unset()


def _resolve_secrets(value: Any, path: Path, key: str, lenient: bool = False) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$env"}:
            name = value["$env"]
            if name not in os.environ:
                if lenient:
                    return _UNSET
                raise ConfigError(path, key, f"environment variable {name} is not set")
            return os.environ[name]
        if set(value) == {"$file"}:
            fpath = Path(value["$file"])
            if not fpath.is_absolute():
                fpath = path.parent / fpath
            try:
                return fpath.read_text(encoding="utf-8").strip()
            except OSError as exc:
                if lenient:
                    return _UNSET
                raise ConfigError(
                    path, key, f"cannot read secret file {fpath}: {exc.strerror}"
                ) from None
        resolved = {
            k: _resolve_secrets(v, path, f"{key}.{k}" if key else k, lenient)
            for k, v in value.items()
        }
        return {k: v for k, v in resolved.items() if v is not _UNSET}
    if isinstance(value, list):
        items = [_resolve_secrets(v, path, f"{key}[{i}]", lenient) for i, v in enumerate(value)]
        return [v for v in items if v is not _UNSET]
    return value


def _first_error(exc: ValidationError, path: Path) -> ConfigError:
    err = exc.errors()[0]
    key = ""
    for part in err["loc"]:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return ConfigError(path, key, msg)


def config_from_dict(
    data: dict[str, Any], path: Path | str = "<memory>", *, read_only: bool = False
) -> Config:
    """Validate a parsed TOML document (secrets resolved) into :class:`Config`.

    ``read_only`` (commands that only read the store): a secret whose ``$env`` variable is
    not set or whose ``$file`` cannot be read is left out instead of stopping the command;
    such a configuration must not be used to serve traffic."""
    path = Path(path)
    data = _resolve_secrets(data, path, "", read_only)
    if read_only:
        tokens = data.get("tokens")
        if isinstance(tokens, list):  # a token left without its value is of no use here
            data["tokens"] = [
                t for t in tokens if not isinstance(t, dict) or "token" in t or "token_sha256" in t
            ]
    systems = data.get("systems", {})
    if isinstance(systems, dict):
        for name, table in systems.items():
            if isinstance(table, dict):
                table.setdefault("name", name)
    try:
        config = Config.model_validate(
            {**data, "path": str(path), "base_dir": str(path.parent if path.suffix else ".")}
        )
    except ValidationError as exc:
        raise _first_error(exc, path) from None
    _check_references(config, path)
    _check_cluster(config, path)
    return config


def _check_cluster(config: Config, path: Path) -> None:
    gw = config.gateway
    if gw.heartbeat_interval * 2 > gw.node_timeout:
        raise ConfigError(
            path,
            "gateway.heartbeat_interval",
            f"must be at most half of gateway.node_timeout ({gw.node_timeout:g}), not "
            f"{gw.heartbeat_interval:g}: the other nodes would take this one over between "
            "two of its own heartbeats",
        )


MIN_SECRET_BITS = 128
_HEX = frozenset("0123456789abcdef")


def secret_bits(value: str) -> int:
    """A rough upper estimate of the entropy of a secret: its length times the bits of the
    alphabet its character classes span (hex counts 4 bits a digit), and nothing for a value
    that repeats a few characters (``"s" * 40``). Refuses the guessable, not the random."""
    if not value:
        return 0
    if set(value.lower()) <= _HEX and (value.islower() or value.isupper()):
        alphabet = 16
    else:
        alphabet = (
            10 * any(c.isascii() and c.isdigit() for c in value)
            + 26 * any("a" <= c <= "z" for c in value)
            + 26 * any("A" <= c <= "Z" for c in value)
            + 33 * any(c.isascii() and not c.isalnum() for c in value)
            + 128 * any(not c.isascii() for c in value)
        )
    if len(set(value)) < min(len(value), alphabet) / 2:
        return len(set(value)) * 4  # a few characters repeated
    return int(len(value) * math.log2(max(alphabet, 2)))


def _check_secrets(config: Config, path: Path) -> None:
    """Inbound secrets, tokens and the session key must carry at least 128 bits."""
    found: list[tuple[str, SecretStr | None]] = [
        ("gateway.session_secret", config.gateway.session_secret)
    ]
    found += [(f"systems.{n}.inbound_secret", s.inbound_secret) for n, s in config.systems.items()]
    found += [(f"tokens[{i}].token", t.token) for i, t in enumerate(config.tokens)]
    for key, secret in found:
        if secret is None:
            continue
        bits = secret_bits(secret.get_secret_value())
        if bits < MIN_SECRET_BITS:
            raise ConfigError(
                path,
                key,
                f"too weak (about {bits} bits; at least {MIN_SECRET_BITS} are needed): use a "
                "random value such as 32 hex digits (python3 -c 'import secrets; "
                "print(secrets.token_hex(16))')",
            )


def _check_references(config: Config, path: Path) -> None:
    _check_secrets(config, path)
    limits = config.limits
    for key, value in (
        ("unsigned_bytes", limits.unsigned_total),
        ("unsigned_bytes_per_system", limits.unsigned_per_system),
    ):
        if value < limits.max_body_bytes:
            raise ConfigError(
                path,
                f"limits.{key}",
                f"{value} is less than limits.max_body_bytes ({limits.max_body_bytes}): "
                "the largest allowed body could never be read",
            )
    for i, route in enumerate(config.routes):
        for j, target in enumerate(route.to):
            if target not in config.systems:
                raise ConfigError(path, f"routes[{i}].to[{j}]", f"no system named {target!r}")
        if route.from_ not in config.systems:
            raise ConfigError(path, f"routes[{i}].from", f"no system named {route.from_!r}")
    for name, system in config.systems.items():
        total = system.timeout.connect + system.timeout.read
        if total >= config.gateway.lease_seconds:
            raise ConfigError(
                path,
                f"systems.{name}.timeout",
                f"connect + read ({total:g}s) must be shorter than gateway.lease_seconds "
                f"({config.gateway.lease_seconds:g}s)",
            )


def load_config(path: Path | str = DEFAULT_CONFIG_PATH, *, read_only: bool = False) -> Config:
    """Read and validate a config file; raise :class:`ConfigError` with one readable line.
    ``read_only``: see :func:`config_from_dict`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from None
    return config_from_dict(data, path, read_only=read_only)
