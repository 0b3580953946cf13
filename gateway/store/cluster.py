"""Cluster membership and once-per-cluster schedules, as plain synchronous SQLAlchemy Core
(run in a write transaction by :class:`gateway.store.Store`, like :mod:`gateway.store.writes`).

* **Generations.** Each node has a row in ``nodes`` with its *generation*, a number that
  grows each time the node joins, and ``alive``. A node's write cycle first reads its row
  ``FOR SHARE`` (:func:`hold`): it records attempt results and takes leases only if the row
  still carries its generation, and no fence can change the row until the cycle commits.
* **Heartbeats** go to ``node_heartbeats`` (:func:`heartbeat`), a table of their own: a
  beat never waits for the node's own cycle, which may itself be waiting for the locks of a
  paused node. A beat also tells the node whether it still holds its generation.
* **Take-over.** A node whose heartbeat is older than the timeout is *fenced* by another
  (:func:`fence`): with its heartbeat row locked (a late beat waits, then learns it was
  fenced), its row gets a new generation and ``alive = false``, its in-flight deliveries
  become pending again and its schedules are freed, in one transaction. Of several nodes
  that see the same silent node, only one fences it.
* **Schedules.** A scheduled run is claimed by setting the schedule row's owner where it has
  none and is due (:func:`claim_run`), in a transaction that holds the claimer's generation;
  it is finished (:func:`finish_run`) only by the owner of the same generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from gateway.model import DeliveryStatus
from gateway.store.tables import deliveries, node_heartbeats, nodes, schedules


def application_name(node_id: str) -> str:
    """The PostgreSQL ``application_name`` of a node's sessions (how a fence finds them)."""
    return f"gateway {node_id}"[:63]


@dataclass(slots=True, frozen=True)
class Fenced:
    """What a take-over freed."""

    node_id: str
    silent_for: float
    deliveries: int
    schedules: int


def _upsert(
    conn: Connection, table: Any, values: dict[str, Any], update_values: dict[str, Any]
) -> None:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    key = next(iter(table.primary_key.columns))
    stmt = dialect_insert(table).values(**values)
    if update_values:
        conn.execute(stmt.on_conflict_do_update(index_elements=[key], set_=update_values))
    else:
        conn.execute(stmt.on_conflict_do_nothing(index_elements=[key]))


def join(conn: Connection, node_id: str, now: float) -> int:
    """Join (or re-join) the cluster with a new generation; give back what this node id
    still held (a crashed earlier run of it, or the node itself before it was fenced)."""
    _upsert(conn, node_heartbeats, {"node_id": node_id, "at": now}, {"at": now})
    _upsert(
        conn,
        nodes,
        {"node_id": node_id, "generation": 0, "alive": True, "joined_at": now},
        {},
    )
    generation = conn.execute(
        update(nodes)
        .where(nodes.c.node_id == node_id)
        .values(generation=nodes.c.generation + 1, alive=True, joined_at=now, fenced_at=None)
        .returning(nodes.c.generation)
    ).scalar_one()
    _free(conn, node_id)
    return int(generation)


def hold(conn: Connection, node_id: str, generation: int) -> bool:
    """Does this node still hold ``generation``? Keeps it (``FOR SHARE``) until commit."""
    found = conn.execute(
        select(nodes.c.generation)
        .where(nodes.c.node_id == node_id, nodes.c.alive.is_(True))
        .with_for_update(read=True)
    ).scalar_one_or_none()
    return found is not None and int(found) == generation


def heartbeat(conn: Connection, node_id: str, generation: int, now: float) -> bool:
    """Beat; False if this node no longer holds ``generation`` (it was fenced)."""
    conn.execute(update(node_heartbeats).where(node_heartbeats.c.node_id == node_id).values(at=now))
    found = conn.execute(
        select(nodes.c.generation).where(nodes.c.node_id == node_id, nodes.c.alive.is_(True))
    ).scalar_one_or_none()
    return found is not None and int(found) == generation


def leave(conn: Connection, node_id: str, generation: int, now: float) -> None:
    """A clean stop: the node is no longer alive and holds nothing."""
    conn.execute(
        update(nodes)
        .where(nodes.c.node_id == node_id, nodes.c.generation == generation)
        .values(alive=False)
    )
    _free(conn, node_id)


def fence(
    conn: Connection, node_id: str, generation: int, cutoff: float, by: str, now: float
) -> Fenced | None:
    """Take a silent node's work over (None: it beat meanwhile, or another node did it).

    PostgreSQL: a silent node may be paused in the middle of a transaction, holding the
    locks of its own row and of the deliveries it was claiming until the server's idle
    timeout. Its sessions are ended first (they carry its application name), which rolls
    that transaction back: nothing it had not committed when it went silent will be."""
    last = conn.execute(
        select(node_heartbeats.c.at).where(node_heartbeats.c.node_id == node_id).with_for_update()
    ).scalar_one_or_none()
    if last is None or last >= cutoff:
        return None
    current = conn.execute(
        select(nodes.c.generation).where(nodes.c.node_id == node_id, nodes.c.alive.is_(True))
    ).scalar_one_or_none()
    if current is None or int(current) != generation:
        return None
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = :app AND pid <> pg_backend_pid() "
                "AND datname = current_database()"
            ),
            {"app": application_name(node_id)},
        ).all()
    changed = conn.execute(
        update(nodes)
        .where(
            nodes.c.node_id == node_id,
            nodes.c.generation == generation,
            nodes.c.alive.is_(True),
        )
        .values(alive=False, generation=nodes.c.generation + 1, fenced_at=now, fenced_by=by)
    ).rowcount
    if not changed:
        return None
    released, freed = _free(conn, node_id)
    return Fenced(node_id, now - float(last), released, freed)


def _free(conn: Connection, node_id: str) -> tuple[int, int]:
    released = conn.execute(
        update(deliveries)
        .where(
            deliveries.c.status == DeliveryStatus.IN_FLIGHT.value,
            deliveries.c.lease_owner == node_id,
        )
        .values(status=DeliveryStatus.PENDING.value, lease_owner=None, lease_expires_at=None)
    ).rowcount
    freed = conn.execute(
        update(schedules)
        .where(schedules.c.owner == node_id)
        .values(owner=None, generation=None, started_at=None)
    ).rowcount
    return int(released or 0), int(freed or 0)


# -- schedules ------------------------------------------------------------------------------------
def claim_run(conn: Connection, name: str, node_id: str, generation: int, now: float) -> bool:
    """Take the run of ``name`` that is due now, if no node runs it and this node is not
    fenced. True: this node runs it (and only this node, until :func:`finish_run`)."""
    if not hold(conn, node_id, generation):
        return False
    _upsert(conn, schedules, {"name": name, "next_run_at": now, "runs": 0}, {})
    result = conn.execute(
        update(schedules)
        .where(
            schedules.c.name == name,
            schedules.c.owner.is_(None),
            schedules.c.next_run_at <= now,
        )
        .values(owner=node_id, generation=generation, started_at=now)
    )
    return bool(result.rowcount)


def finish_run(
    conn: Connection,
    name: str,
    node_id: str,
    generation: int,
    started: float,
    next_run_at: float,
    error: str | None,
) -> bool:
    """Free the schedule and set its next run (False: this node lost it, fenced meanwhile)."""
    result = conn.execute(
        update(schedules)
        .where(
            schedules.c.name == name,
            schedules.c.owner == node_id,
            schedules.c.generation == generation,
        )
        .values(
            owner=None,
            generation=None,
            started_at=None,
            next_run_at=next_run_at,
            last_run_at=started,
            last_node=node_id,
            last_error=error,
            runs=schedules.c.runs + 1,
        )
    )
    return bool(result.rowcount)


def release_run(conn: Connection, name: str, node_id: str, generation: int) -> bool:
    """Give a run back unfinished (the node is stopping): it is due again at once."""
    result = conn.execute(
        update(schedules)
        .where(
            schedules.c.name == name,
            schedules.c.owner == node_id,
            schedules.c.generation == generation,
        )
        .values(owner=None, generation=None, started_at=None)
    )
    return bool(result.rowcount)


def schedule_row(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(schedules).where(schedules.c.name == name)).first()
    return dict(row._mapping) if row is not None else None


def silent_nodes(conn: Connection, node_id: str, cutoff: float) -> list[tuple[str, int]]:
    """Other live nodes whose last heartbeat is older than ``cutoff``."""
    rows = conn.execute(
        select(nodes.c.node_id, nodes.c.generation)
        .join(node_heartbeats, node_heartbeats.c.node_id == nodes.c.node_id)
        .where(
            nodes.c.alive.is_(True),
            node_heartbeats.c.at < cutoff,
            nodes.c.node_id != node_id,
        )
    )
    return [(str(r.node_id), int(r.generation)) for r in rows]
