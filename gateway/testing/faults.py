"""The fault middleware and profiles simulators install, for tests and plugin authors' kits.

They live in :mod:`gateway.faults` (the simulators that ``gateway simulate`` and
``gateway demo`` run are product code, not tests); this module keeps the test kit's name.
"""

from gateway.faults import (
    FAULTS_KEY,
    PROFILES,
    FaultProfile,
    fault_middleware,
    get_profile,
    install_faults,
)

__all__ = [
    "FAULTS_KEY",
    "PROFILES",
    "FaultProfile",
    "fault_middleware",
    "get_profile",
    "install_faults",
]
