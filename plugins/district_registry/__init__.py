"""Connector for the social-assistance registry (phần mềm quản lý đối tượng bảo trợ xã hội).

The registry's XML profile is FORMATS.md §2 (``schemas/registry.xsd``): the gateway sends it
applications (``HoSoTroCap``) and suspension candidates (``DeNghiTamDung``); it pushes back
decisions (``QuyetDinh`` / ``DanhSachQuyetDinh``). The plugin also ships a simulator of the
registry for demos and tests.
"""

from __future__ import annotations

from gateway import hookimpl
from gateway.hookspecs import RegisterConnector, RegisterSimulator

from .connector import RegistryConnector
from .simulator import create_registry_simulator

PLUGIN_NAME = "district_registry"


@hookimpl
def gateway_register_connectors(register: RegisterConnector) -> None:
    register(PLUGIN_NAME, RegistryConnector)


@hookimpl
def gateway_register_simulators(register: RegisterSimulator) -> None:
    register(PLUGIN_NAME, create_registry_simulator)


__all__ = ["PLUGIN_NAME", "RegistryConnector", "create_registry_simulator"]
