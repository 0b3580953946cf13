"""Post office (Bưu điện, the payer): payment lists out, payment results in.

Registers the ``post_office`` connector (:class:`PostOfficeConnector`) and its simulator
(:func:`create_post_office_simulator`). Wire format: FORMATS.md §3, XSD in
``schemas/chitra.xsd``.
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.hookspecs import RegisterConnector, RegisterSimulator
from plugins.post_office.connector import PostOfficeConnector
from plugins.post_office.simulator import create_post_office_simulator

__all__ = ["PostOfficeConnector", "create_post_office_simulator"]


@hookimpl
def gateway_register_connectors(register: RegisterConnector) -> None:
    register("post_office", PostOfficeConnector)


@hookimpl
def gateway_register_simulators(register: RegisterSimulator) -> None:
    register("post_office", create_post_office_simulator)
