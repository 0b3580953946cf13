"""One-stop-shop plugin: the DVCQG sync protocol connector and its simulator.

Registers the connector ``one_stop_shop`` (``[systems.motcua] plugin = "one_stop_shop"``)
and a simulator of the same name (``gateway simulate one_stop_shop``).
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.hookspecs import RegisterConnector, RegisterSimulator
from plugins.one_stop_shop.connector import OneStopShopConnector
from plugins.one_stop_shop.options import OneStopShopOptions
from plugins.one_stop_shop.simulator import create_one_stop_shop_simulator

CONNECTOR_NAME = "one_stop_shop"


@hookimpl
def gateway_register_connectors(register: RegisterConnector) -> None:
    register(CONNECTOR_NAME, OneStopShopConnector)


@hookimpl
def gateway_register_simulators(register: RegisterSimulator) -> None:
    register(CONNECTOR_NAME, create_one_stop_shop_simulator)


__all__ = [
    "CONNECTOR_NAME",
    "OneStopShopConnector",
    "OneStopShopOptions",
    "create_one_stop_shop_simulator",
    "gateway_register_connectors",
    "gateway_register_simulators",
]
