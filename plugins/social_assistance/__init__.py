"""Monthly social assistance (trợ cấp xã hội hàng tháng): the domain rules as pure functions.

Rules as data (``config/social_assistance.toml``, ``config/admin_units.toml``), amounts,
the roster of benefits derived from the registry's decisions, payment lists for the payer,
reconciliation of payment results and the office's monthly report. Nothing here does I/O
beyond reading the two TOML files; the gateway wiring (pluggy hooks) is added separately.
"""
