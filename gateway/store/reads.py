"""Read queries (the CLI, the admin API, the dashboard): async, on the reader engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.model import DeliveryStatus
from gateway.pseudonym import pseudonymise_key
from gateway.store.records import GENESIS, DeliveryFilter, LogFilter, log_hash
from gateway.store.tables import breakers, deliveries, delivery_log, messages, poll_cursors

ACTIVE = (DeliveryStatus.PENDING.value, DeliveryStatus.IN_FLIGHT.value)


class ReadQueries:
    """Mixed into :class:`gateway.store.Store`; ``reader`` is its read engine."""

    @property
    def reader(self) -> AsyncEngine:
        raise NotImplementedError

    async def queue_depth(self) -> int:
        async with self.reader.connect() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(deliveries)
                        .where(deliveries.c.status.in_(ACTIVE))
                    )
                ).scalar_one()
            )

    async def next_due(self) -> dict[str, float]:
        """Earliest ``next_attempt_at`` of pending deliveries, per destination."""
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(deliveries.c.destination, func.min(deliveries.c.next_attempt_at))
                .where(deliveries.c.status == DeliveryStatus.PENDING.value)
                .group_by(deliveries.c.destination)
            )
            return {dest: float(at) for dest, at in rows}

    async def message_counts(self) -> dict[str, int]:
        """Messages taken in, by source system."""
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(messages.c.source, func.count()).group_by(messages.c.source)
            )
            return {source: int(count) for source, count in rows}

    async def destination_depths(self) -> dict[str, dict[str, int]]:
        """Counts of deliveries by destination and status."""
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(deliveries.c.destination, deliveries.c.status, func.count()).group_by(
                    deliveries.c.destination, deliveries.c.status
                )
            )
            out: dict[str, dict[str, int]] = {}
            for dest, status, count in rows:
                out.setdefault(dest, {})[status] = int(count)
            return out

    async def load_breakers(self) -> dict[str, tuple[str, int, float | None]]:
        async with self.reader.connect() as conn:
            rows = await conn.execute(select(breakers))
            return {r.destination: (r.state, r.failures, r.opened_at) for r in rows}

    async def breaker_states(self) -> dict[str, tuple[str, int, float | None, float]]:
        """The saved breakers with the time each was saved (the state all nodes share)."""
        async with self.reader.connect() as conn:
            rows = await conn.execute(select(breakers))
            return {
                r.destination: (r.state, r.failures, r.opened_at, float(r.updated_at)) for r in rows
            }

    async def get_cursor(self, system: str) -> str | None:
        async with self.reader.connect() as conn:
            value = (
                await conn.execute(
                    select(poll_cursors.c.cursor).where(poll_cursors.c.system == system)
                )
            ).scalar()
            return None if value is None else str(value)

    # -- reading ---------------------------------------------------------------------------------
    async def get_delivery(self, delivery_id: int) -> dict[str, Any] | None:
        async with self.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(
                        deliveries,
                        messages.c.uid.label("message_uid"),
                        messages.c.source,
                        messages.c.event,
                        messages.c.ref,
                        messages.c.payload,
                    )
                    .join(messages, messages.c.id == deliveries.c.message_id)
                    .where(deliveries.c.id == delivery_id)
                )
            ).first()
            return None if row is None else dict(row._mapping)

    async def list_deliveries(
        self, flt: DeliveryFilter, *, limit: int = 50, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        d = deliveries
        query = (
            select(d, messages.c.source, messages.c.event, messages.c.ref)
            .join(messages, messages.c.id == d.c.message_id)
            .order_by(d.c.id.desc())
            .limit(limit)
        )
        if flt.status:
            query = query.where(d.c.status == flt.status)
        if flt.destination:
            query = query.where(d.c.destination == flt.destination)
        if flt.dossier:
            query = query.where(d.c.dossier_key == pseudonymise_key(flt.dossier))
        if before_id is not None:
            query = query.where(d.c.id < before_id)
        async with self.reader.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    def _log_query(self, flt: LogFilter) -> Select[Any]:
        q = select(delivery_log)
        if flt.system:
            q = q.where(
                or_(delivery_log.c.destination == flt.system, delivery_log.c.source == flt.system)
            )
        if flt.outcome:
            q = q.where(delivery_log.c.outcome == flt.outcome)
        if flt.dossier:
            q = q.where(delivery_log.c.dossier_key == pseudonymise_key(flt.dossier))
        if flt.since is not None:
            q = q.where(delivery_log.c.at >= flt.since)
        if flt.until is not None:
            q = q.where(delivery_log.c.at < flt.until)
        if flt.delivery_id is not None:
            q = q.where(delivery_log.c.delivery_id == flt.delivery_id)
        return q

    async def list_log(
        self, flt: LogFilter, *, limit: int = 50, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        q = self._log_query(flt).order_by(delivery_log.c.id.desc()).limit(limit)
        if before_id is not None:
            q = q.where(delivery_log.c.id < before_id)
        async with self.reader.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(q)]

    async def iter_log(
        self, flt: LogFilter, batch: int = 2000
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The filtered log in id order, in batches (for exports of any size)."""
        after = 0
        while True:
            q = (
                self._log_query(flt)
                .where(delivery_log.c.id > after)
                .order_by(delivery_log.c.id)
                .limit(batch)
            )
            async with self.reader.connect() as conn:
                rows = [dict(r._mapping) for r in await conn.execute(q)]
            if not rows:
                return
            yield rows
            after = rows[-1]["id"]

    async def count_log(self, flt: LogFilter) -> int:
        q = select(func.count()).select_from(self._log_query(flt).subquery())
        async with self.reader.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def dossier_timeline(self, dossier_key: str) -> dict[str, Any]:
        """Every message and attempt for one dossier key, across systems, in time order. A
        key typed with a full CCCD finds what is stored under its pseudonym."""
        dossier_key = pseudonymise_key(dossier_key)
        async with self.reader.connect() as conn:
            msgs = [
                dict(r._mapping)
                for r in await conn.execute(
                    select(
                        messages.c.id,
                        messages.c.uid,
                        messages.c.source,
                        messages.c.event,
                        messages.c.ref,
                        messages.c.revision,
                        messages.c.received_at,
                        messages.c.parent_delivery_id,
                    )
                    .where(messages.c.dossier_key == dossier_key)
                    .order_by(messages.c.id)
                )
            ]
            dels = [
                dict(r._mapping)
                for r in await conn.execute(
                    select(deliveries)
                    .where(deliveries.c.dossier_key == dossier_key)
                    .order_by(deliveries.c.id)
                )
            ]
            log = [
                dict(r._mapping)
                for r in await conn.execute(
                    select(delivery_log)
                    .where(delivery_log.c.dossier_key == dossier_key)
                    .order_by(delivery_log.c.id)
                )
            ]
        return {"dossier_key": dossier_key, "messages": msgs, "deliveries": dels, "attempts": log}

    async def verify_log(self, *, pruned: bool = False) -> tuple[int, list[str]]:
        """Walk every chain; return (rows checked, problems found).

        With ``pruned`` (a retention setting deletes old rows), each chain may start at its
        first remaining row; anything missing or edited after that is still found.
        """
        problems: list[str] = []
        checked = 0
        heads: dict[str, tuple[int, str]] = {}
        after = 0
        while True:
            async with self.reader.connect() as conn:
                rows = [
                    dict(r._mapping)
                    for r in await conn.execute(
                        select(delivery_log)
                        .where(delivery_log.c.id > after)
                        .order_by(delivery_log.c.id)
                        .limit(5000)
                    )
                ]
            if not rows:
                break
            for row in rows:
                checked += 1
                if pruned and row["chain"] not in heads:
                    heads[row["chain"]] = (row["seq"] - 1, row["prev_hash"])
                seq, prev = heads.get(row["chain"], (0, GENESIS))
                if row["seq"] != seq + 1:
                    jump = f"jumps from seq {seq} to {row['seq']}"
                    problems.append(f"row {row['id']}: chain {row['chain']} {jump}")
                if row["prev_hash"] != prev:
                    problems.append(
                        f"row {row['id']}: prev_hash does not match the previous row of its chain"
                    )
                if log_hash(row["prev_hash"], row) != row["hash"]:
                    problems.append(f"row {row['id']}: hash does not match its content (edited?)")
                heads[row["chain"]] = (row["seq"], row["hash"])
            after = rows[-1]["id"]
        return checked, problems
