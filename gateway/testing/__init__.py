"""The kit for plugin authors (and the gateway's own tests).

* :mod:`gateway.testing.contract` — the connector contract suite (``ConnectorContract``);
* :mod:`gateway.testing.faultproxy` — ``FaultProxy``, a TCP proxy that breaks links on purpose;
* :mod:`gateway.testing.faults` — the fault middleware and profiles simulators install (they
  live in :mod:`gateway.faults`, product code the simulators use; this name is kept for kits);
* :mod:`gateway.testing.postgres` — ``ThrowawayPostgres``, a PostgreSQL cluster for tests;
* :mod:`gateway.testing.sink` — a recording HTTP receiver;
* :mod:`gateway.testing.harness` — a gateway, a simulator on loopback, a test config;
* :mod:`gateway.testing.pytest_plugin` — the ``gw_*`` fixtures (entry point ``pytest11``);
* :mod:`gateway.testing.hookdocs` — the hooks reference generated from the hook specs.

Nothing is imported here, so ``import gateway.testing`` stays cheap.
"""
