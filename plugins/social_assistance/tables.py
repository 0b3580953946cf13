"""The plugin's own tables (``sa_`` prefix), created by its Alembic branch
(``migrations/versions/0001_social_assistance.py``). Portable SQLAlchemy Core: SQLite and
PostgreSQL. JSON is stored as text (canonical JSON), money as integers (VND), times as epoch
seconds like the core's tables."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Integer, MetaData, String, Table, Text

metadata = MetaData()

#: decisions received from the registry (QuyetDinh attributes), one row per distinct content
sa_decisions = Table(
    "sa_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("so", String(128), nullable=False),
    Column("ma_ho_so", String(256), nullable=False),
    Column("so_dinh_danh", String(32), nullable=False),
    Column("ngay_ky", String(10), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False),  # applied | held | conflict
    Column("registry_amount", BigInteger),
    Column("rules_amount", BigInteger),
    Column("registry_month", String(7)),  # held for an early start: the decision's tuThang
    Column("rules_month", String(7)),  # ... and the first month the rules allow
    Column("accepted_figure", String(16)),  # gateway | registry
    Column("accepted_by", String(128)),
    Column("accepted_at", Float),
    Column("received_at", Float, nullable=False),
)

#: payment lists sent (one row per sending; a higher lan_gui replaces the earlier one)
sa_lists = Table(
    "sa_lists",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ky", String(7), nullable=False),
    Column("ma_xa", String(8), nullable=False),
    Column("lan_gui", Integer, nullable=False),
    Column("payload", Text, nullable=False),  # the wire payload (PaymentList.to_payload())
    Column("lines", Text, nullable=False),  # the full lines (arrears by month, line keys)
    Column("content_hash", String(64), nullable=False),  # of the lines, lapLuc/lanGui aside
    Column("total_people", Integer, nullable=False),
    Column("total_amount", BigInteger, nullable=False),
    Column("built_at", Float, nullable=False),
    Column("message_uid", String(32), nullable=False),
)

#: payment results (KetQuaChiTra lines), one per (ky, ma_xa, so_dinh_danh, loai_doi_tuong)
sa_results = Table(
    "sa_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ky", String(7), nullable=False),
    Column("ma_xa", String(8), nullable=False),
    Column("so_dinh_danh", String(32), nullable=False),
    Column("loai_doi_tuong", String(16), nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", Float, nullable=False),
)

#: communes whose list for a month could not be built or sent: one open row per (ky, ma_xa)
#: until a later run builds and sends that list (the dashboard shows the open ones)
sa_alerts = Table(
    "sa_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ky", String(7), nullable=False),
    Column("ma_xa", String(8), nullable=False),
    Column("name", String(128), nullable=False),
    Column("people", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("hint", Text, nullable=False),
    Column("opened_at", Float, nullable=False),
    Column("last_attempt_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("resolved_at", Float),
    Column("resolved_by", String(128)),
)

#: every send of a month that was not a dry run (what the payment-day job reads: whether a
#: whole-scope send ran, and when the last one did); the same is in the audit log
sa_send_runs = Table(
    "sa_send_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ky", String(7), nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("whole_scope", Integer, nullable=False),  # 1: every configured commune
    Column("unpaid", Integer, nullable=False),  # communes left unpaid by this run
)
