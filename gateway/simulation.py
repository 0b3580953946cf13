"""What a connector plugin's simulator receives, and how ``gateway simulate`` runs one.

A connector plugin ships a simulator of its external system: an aiohttp application with
fault knobs (:mod:`gateway.faults`, also in :mod:`gateway.api`). It registers a factory with
``gateway_register_simulators(register)``: ``register("district_registry", factory)`` where
``factory(options: SimulatorOptions) -> web.Application``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(slots=True)
class SimulatorOptions:
    """Settings common to all simulators.

    :param gateway_url: where the simulator pushes (``http://127.0.0.1:8080``); None = never push.
    :param secret: the HMAC secret it signs pushes with (the gateway's ``inbound_secret``).
    :param system: the gateway's name for this system (the ``{system}`` in ``/inbound/{system}``).
    :param fault_profile: a name from :data:`gateway.faults.PROFILES`.
    :param seed: for reproducible data and faults.
    :param speed: how fast simulated time runs (delays are divided by it).
    :param extra: simulator-specific settings.
    """

    gateway_url: str | None = None
    secret: str | None = None
    system: str = ""
    fault_profile: str = "none"
    seed: int = 0
    speed: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)


SimulatorFactory = Callable[[SimulatorOptions], web.Application]
