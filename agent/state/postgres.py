"""The shared state store of a fleet: PostgreSQL (psycopg 3, async, with a pool).

One object implements both protocols of agent/state/interface.py (ResultStore,
AlertingStore) and the fleet's own operations (agent/state/fleet.py): the engine
lease with its fencing token, and claiming queued notifications with
FOR UPDATE SKIP LOCKED. Every lease and claim time is the database's clock
(now()), never an agent's: agents' clocks drift, the database's is one.

Migrations are versioned (vaktpost_schema) and applied in one transaction under
a transaction-level advisory lock, so agents that start together apply each
migration once and the others wait for it. A migration is never edited once
released; later ones append to MIGRATIONS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from agent.state.interface import (
    DELIVERY_COLUMNS,
    HeldOutcomes,
    OutboxRow,
    OutboxUpdate,
    OutcomeRows,
    delivery_event,
    dumps,
    in_time_order,
)
from agent.state.pg_statements import ONE_STATEMENT as _ONE_STATEMENT
from agent.state.pg_statements import execute as _execute
from agent.state.pg_statements import fetch as _fetch
from agent.state.pg_statements import fetch_value as _fetch_value
from agent.state.postgres_errors import FencedError, PostgresStoreError
from alerting.model import CheckTrack, EngineState, Incident, Outcome, Silence

log = logging.getLogger("vaktpost.store")
OpenState = tuple[dict[int, Incident], dict[int, Silence]]  # open incidents, silences
# The pool warns at every failed reconnect, several times a second while the database
# is down; the store says so once itself ("state store cannot write").
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

# pg_advisory_xact_lock key of the migrations: any fixed 64-bit number, "vaktpost" in ASCII.
MIGRATION_LOCK = 0x76616B74706F7374
ENGINE = "engine"

MIGRATIONS: list[str] = [
    # 1: the same tables as SQLite's (agent/state/sqlite_schema.py), plus who ran a
    # result, delivery claims, the engine lease and the fleet's members.
    """
    CREATE TABLE check_results (
        check_name TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        facts TEXT NOT NULL,
        duration_seconds DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION NOT NULL,
        agent TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE check_state (
        check_name TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (check_name, key)
    );
    CREATE TABLE alert_checks (
        check_name TEXT PRIMARY KEY,
        data TEXT NOT NULL
    );
    CREATE TABLE incidents (
        id BIGINT PRIMARY KEY,
        department TEXT,
        system TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        resolved_at DOUBLE PRECISION,
        data TEXT NOT NULL
    );
    CREATE INDEX incidents_open ON incidents(id) WHERE resolved_at IS NULL;
    CREATE TABLE incident_events (
        id BIGSERIAL PRIMARY KEY,
        incident_id BIGINT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        step INTEGER,
        channels TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX incident_events_by_incident ON incident_events(incident_id, id);
    CREATE TABLE silences (
        id BIGINT PRIMARY KEY,
        ends_at DOUBLE PRECISION NOT NULL,
        data TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id BIGSERIAL PRIMARY KEY,
        dedup_key TEXT NOT NULL,
        channel TEXT NOT NULL,
        incident_id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        last_error TEXT NOT NULL DEFAULT '',
        done_at DOUBLE PRECISION,
        claimed_by TEXT,
        claimed_until TIMESTAMPTZ,
        UNIQUE (dedup_key, channel)
    );
    CREATE INDEX outbox_pending ON outbox(channel, id) WHERE state = 'pending';
    CREATE TABLE alert_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        holder_name TEXT NOT NULL,
        token BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    CREATE TABLE fleet_agents (
        instance TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        seen_at TIMESTAMPTZ NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL
    );
    """,
    # 2: how many checks each agent schedules, for the fleet's status and metrics.
    """
    ALTER TABLE fleet_agents ADD COLUMN checks INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: every write of a result takes the next number, so the engine holder reads
    # only what the other agents wrote since its last look.
    """
    CREATE SEQUENCE check_results_seq;
    ALTER TABLE check_results ADD COLUMN seq BIGINT NOT NULL DEFAULT nextval('check_results_seq');
    CREATE INDEX check_results_by_seq ON check_results(seq);
    """,
    # 4: acks and silences that arrive at an agent without the engine lease, queued for
    # the holder to apply (alerting/forwarding.py); the asker waits for the verdict.
    """
    CREATE TABLE requests (
        id BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        asked_by TEXT NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        expires_at TIMESTAMPTZ NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued',
        status INTEGER,
        verdict TEXT,
        answered_by TEXT,
        answered_at TIMESTAMPTZ
    );
    CREATE INDEX requests_queued ON requests(id) WHERE state = 'queued';
    """,
    # 5: the history, shared by the fleet (agent/state/pg_history.py): SQLite's tables of
    # migrations 3 and 4 (agent/state/sqlite_schema.py), and the indexes its reads and
    # the holder's pruning need.
    """
    CREATE TABLE check_history (
        id BIGSERIAL PRIMARY KEY,
        check_name TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX check_history_by_check ON check_history(check_name, at);
    CREATE INDEX check_history_by_at ON check_history(at);
    CREATE TABLE audit_log (
        id BIGSERIAL PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_log_by_at ON audit_log(at);
    CREATE TABLE restore_tests (
        id BIGSERIAL PRIMARY KEY,
        check_name TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        ok INTEGER NOT NULL,
        seconds DOUBLE PRECISION,
        UNIQUE (check_name, at)
    );
    CREATE INDEX restore_tests_by_at ON restore_tests(at);
    CREATE INDEX incidents_by_started ON incidents(started_at);
    CREATE INDEX incidents_by_resolved ON incidents(resolved_at);
    CREATE INDEX outbox_by_incident ON outbox(incident_id);
    """,
]


def redacted(conninfo: str) -> str:
    """The conninfo without its password: the only form that may reach a log or an error."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable)"
    params.pop("password", None)
    return make_conninfo("", **{k: v for k, v in params.items() if v is not None})


def read_password_file(path: str | Path) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PostgresStoreError(
            f"cannot read store_password_file {path}: {exc.strerror}"
        ) from None
    return text.strip("\r\n")


def is_store_failure(exc: BaseException) -> bool:
    """The database's own trouble (unreachable, restarting, full), not a caller's bug."""
    if isinstance(exc, FencedError):
        return False
    if isinstance(exc, psycopg.errors.IntegrityError | psycopg.errors.ProgrammingError):
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError | OSError) or (
        isinstance(exc, psycopg.DatabaseError)
        and getattr(exc, "sqlstate", None) is not None
        and str(exc.sqlstate)[:2] in ("08", "53", "57", "58", "40")
    )


class PostgresStore:
    def __init__(
        self,
        conninfo: str,
        *,
        password: str | None = None,
        agent: str = "",
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 10.0,
    ) -> None:
        kwargs: dict[str, Any] = {"autocommit": True}
        if password is not None:
            kwargs["password"] = password  # libpq reads PGPASSWORD and ~/.pgpass itself
        self.where = redacted(conninfo)
        self.agent = agent
        # This process in the fleet: two processes that share a name are still told apart.
        self.instance = f"{agent}/{uuid.uuid4()}"
        self._pool = psycopg_pool.AsyncConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs=kwargs,
            open=False,
            timeout=timeout,
            name="vaktpost-store",
        )
        self._open = False
        self._probe: asyncio.Task[None] | None = None
        self.writable = True
        self.last_error = ""
        self.write_failures = 0
        self.recovery = None  # a shared store is never replaced by an agent
        self.recovered_at: float | None = None
        # The engine-lease token this agent's engine writes under (None: not fenced).
        self.fence: int | None = None
        self._held = HeldOutcomes()  # outbox outcomes the database could not write yet
        self._swept_at = -1e9  # monotonic time lapsed members were last dropped

    # -- lifecycle -----------------------------------------------------------------
    async def open(self, recover: bool = False, verify: object = ()) -> None:
        """Connect and migrate. `recover`/`verify` are SQLite's; a shared store is
        never moved aside by an agent."""
        try:
            await self._pool.open(wait=True, timeout=self._pool.timeout)
            async with self._pool.connection() as conn:
                await migrate(conn)
        except psycopg_pool.PoolTimeout as exc:
            await self._pool.close()
            raise PostgresStoreError(f"cannot reach state store {self.where}: {exc}") from None
        except (psycopg.Error, OSError) as exc:
            await self._pool.close()
            raise PostgresStoreError(f"state store {self.where}: {_one_line(exc)}") from None
        self._open = True

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
            self._probe = None
        self._open = False
        await self._pool.close()

    @property
    def is_open(self) -> bool:
        return self._open

    def start_probe(self, every: float = 5.0, every_down: float = 1.0) -> None:
        async def forever() -> None:
            while True:
                await asyncio.sleep(every if self.writable else every_down)
                with contextlib.suppress(Exception):  # recorded by _run
                    await self._run(_probe_write)

        self._probe = asyncio.create_task(forever(), name="store-probe")

    # -- running work --------------------------------------------------------------
    async def run(self, fn: Any, *args: Any) -> Any:
        """fn(conn, *args) in one transaction, for modules with tables of their own
        (agent/state/pg_requests.py); failures count toward the store's health."""
        return await self._run(fn, *args)

    async def _run(self, fn: Any, *args: Any) -> Any:
        """fn(conn, *args) in one transaction; the store's health follows the outcome."""
        try:
            if fn in _ONE_STATEMENT:
                # The connections autocommit: one statement is its own transaction, and
                # BEGIN/COMMIT around it were two more round trips (the fleet's polls).
                async with self._pool.connection() as conn:
                    out = await fn(conn, *args)
            else:
                async with self._pool.connection() as conn, conn.transaction():
                    out = await fn(conn, *args)
        except BaseException as exc:
            if is_store_failure(exc) or isinstance(exc, psycopg_pool.PoolTimeout):
                self._failed(exc)
            raise
        if not self.writable:
            self.writable = True
            log.warning("state store writes again", extra={"store": self.where})
        return out

    def _failed(self, exc: BaseException) -> None:
        self.write_failures += 1
        if self.writable:
            log.error(
                "state store cannot write", extra={"store": self.where, "error": _one_line(exc)}
            )
        self.writable = False
        self.last_error = _one_line(exc)

    async def now(self) -> float:
        """The database's clock, as Unix seconds."""
        return float(await self._run(_fetch_value, "SELECT extract(epoch FROM now())", ()))

    # -- check results and state -------------------------------------------------------
    async def save_results(self, rows: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
        # One statement over one JSON array, not one per row nor an array per column:
        # the flush of a second's results was the largest share of an agent's store
        # CPU, most of it adapting the Python lists to PostgreSQL arrays.
        # Facts go as text inside it: a fact may be NaN, which PostgreSQL's JSON refuses.
        batch = [
            {**r, "name": name, "type": type_, "facts": json.dumps(r["facts"])}
            for name, type_, r in rows
        ]
        if batch:
            await self._run(_execute, _UPSERT_RESULTS, (self.agent, json.dumps(batch)))

    async def load_results(self) -> dict[str, dict[str, Any]]:
        rows = await self._run(
            _fetch,
            "SELECT check_name, type, status, message, facts, duration_seconds, finished_at,"
            " agent FROM check_results",
            (),
        )
        return {
            r[0]: {
                "name": r[0],
                "type": r[1],
                "status": r[2],
                "message": r[3],
                "facts": json.loads(r[4]),
                "duration_seconds": r[5],
                "finished_at": r[6],
                "agent": r[7],
            }
            for r in rows
        }

    async def get_state(self, check: str, key: str) -> Any:
        rows = await self._run(
            _fetch, "SELECT value FROM check_state WHERE check_name=%s AND key=%s", (check, key)
        )
        return json.loads(rows[0][0]) if rows else None

    async def set_state(self, check: str, key: str, value: Any) -> None:
        await self._run(
            _execute,
            "INSERT INTO check_state(check_name, key, value) VALUES (%s, %s, %s)"
            " ON CONFLICT (check_name, key) DO UPDATE SET value=excluded.value",
            (check, key, json.dumps(value)),
        )

    async def update_state(self, check: str, key: str, change: Callable[[Any], Any]) -> Any:
        """One transaction holding the row's lock: two agents updating one value (an
        Alertmanager pair posting to two agents) queue behind each other."""

        async def step(conn: AsyncConnection[Any]) -> Any:
            await conn.execute(
                "INSERT INTO check_state(check_name, key, value) VALUES (%s, %s, 'null')"
                " ON CONFLICT (check_name, key) DO NOTHING",
                (check, key),
            )
            rows = await _fetch(
                conn,
                "SELECT value FROM check_state WHERE check_name=%s AND key=%s FOR UPDATE",
                (check, key),
            )
            value = change(json.loads(rows[0][0]))
            await conn.execute(
                "UPDATE check_state SET value=%s WHERE check_name=%s AND key=%s",
                (json.dumps(value), check, key),
            )
            return value

        return await self._run(step)

    # -- engine state ------------------------------------------------------------------
    async def load_state(self) -> EngineState:
        return await self._run(_read_state)  # type: ignore[no-any-return]

    async def load_open_state(self) -> OpenState:
        """Open incidents and silences: what an agent without the engine lease re-reads
        every few seconds (the check tracks, one row per check, far less often)."""

        async def read(conn: AsyncConnection[Any]) -> OpenState:
            rows = await _fetch(conn, "SELECT data FROM incidents WHERE resolved_at IS NULL", ())
            incidents = {i.id: i for i in (Incident.from_json(json.loads(r[0])) for r in rows)}
            rows = await _fetch(conn, "SELECT data FROM silences", ())
            silences = {x.id: x for x in (Silence.from_json(json.loads(r[0])) for r in rows)}
            return incidents, silences

        result: OpenState = await self._run(read)
        return result

    async def persist(self, out: Outcome, state: EngineState) -> None:
        """One transaction for one engine outcome; refused (FencedError) when this
        store's `fence` token is no longer the engine lease's."""
        rows = OutcomeRows.of(out, state)
        fence = self.fence

        async def write(conn: AsyncConnection[Any]) -> None:
            await _check_fence(conn, fence)
            async with conn.cursor() as cur:
                if rows.checks:
                    await cur.executemany(
                        "INSERT INTO alert_checks(check_name, data) VALUES (%s, %s)"
                        " ON CONFLICT (check_name) DO UPDATE SET data=excluded.data",
                        rows.checks,
                    )
                if rows.incidents:
                    await cur.executemany(_UPSERT_INCIDENT, rows.incidents)
                if rows.events:
                    await cur.executemany(_INSERT_EVENT, rows.events)
                if rows.notes:
                    await cur.executemany(_INSERT_NOTE, rows.notes)
                await cur.executemany(_UPSERT_META, rows.meta)

        await self._run(write)

    async def save_silence(self, silence: Silence, state: EngineState) -> None:
        row = (silence.id, silence.ends_at, dumps(silence.to_json()))
        meta = ("next_silence_id", str(state.next_silence_id))

        async def write(conn: AsyncConnection[Any]) -> None:
            # Silences arrive at any agent: ids may race, the greater counter wins.
            await conn.execute(
                "INSERT INTO silences(id, ends_at, data) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET ends_at=excluded.ends_at, data=excluded.data",
                row,
            )
            await conn.execute(
                "INSERT INTO alert_meta(key, value) VALUES (%s, %s) ON CONFLICT (key)"
                " DO UPDATE SET value=GREATEST(alert_meta.value::bigint,"
                " excluded.value::bigint)::text",
                meta,
            )

        await self._run(write)

    async def silences(self) -> list[Silence]:
        rows = await self._run(_fetch, "SELECT data FROM silences ORDER BY id", ())
        return [Silence.from_json(json.loads(r[0])) for r in rows]

    async def incidents(self, state: str | None, limit: int = 200) -> list[dict[str, Any]]:
        where = {"open": "WHERE resolved_at IS NULL", "resolved": "WHERE resolved_at IS NOT NULL"}
        sql = f"SELECT data FROM incidents {where.get(state or '', '')} ORDER BY id DESC LIMIT %s"
        rows = await self._run(_fetch, sql, (limit,))
        return [json.loads(r[0]) for r in rows]

    async def incident(self, incident_id: int) -> dict[str, Any] | None:
        rows = await self._run(_fetch, "SELECT data FROM incidents WHERE id=%s", (incident_id,))
        return dict(json.loads(rows[0][0])) if rows else None

    async def timeline(self, incident_id: int) -> list[dict[str, Any]]:
        """The incident's events and each delivery (channel and outcome), in time order."""

        async def read(conn: AsyncConnection[Any]) -> list[dict[str, Any]]:
            events = [
                {"at": r[0], "kind": r[1], "step": r[2], "channels": json.loads(r[3]),
                 "message": r[4]}
                for r in await _fetch(
                    conn,
                    "SELECT at, kind, step, channels, message FROM incident_events"
                    " WHERE incident_id=%s ORDER BY id",
                    (incident_id,),
                )
            ]  # fmt: skip
            events += [
                delivery_event(*r)
                for r in await _fetch(
                    conn,
                    f"SELECT {DELIVERY_COLUMNS} FROM outbox WHERE incident_id=%s ORDER BY id",
                    (incident_id,),
                )
            ]
            return in_time_order(events)

        result: list[dict[str, Any]] = await self._run(read)
        return result

    # -- outbox ------------------------------------------------------------------------
    async def head(self, channel: str, limit: int) -> list[OutboxRow]:
        """The oldest pending rows of a channel, in order (due or not, claimed or not)."""
        await self._held.flush(self._write_outcomes, _held_failure)
        rows = await self._run(
            _fetch,
            f"SELECT {_ROW} FROM outbox WHERE state='pending' AND channel=%s ORDER BY id LIMIT %s",
            (channel, limit + len(self._held.updates)),
        )
        return self._held.overlay((_outbox_row(r) for r in rows), limit)

    async def claim(self, channel: str, limit: int, hold: float = 60.0) -> list[OutboxRow]:
        """Take up to `limit` due pending rows of a channel for this agent to send.

        FOR UPDATE SKIP LOCKED: agents claiming at once take disjoint rows, and a
        claim lasts `hold` seconds of database time, so the rows of an agent that
        dies mid-send are claimed by another after it (at-least-once, same keys).
        """
        rows = await self._run(
            _fetch,
            "UPDATE outbox SET claimed_by=%s, claimed_until=now() + make_interval(secs => %s)"
            " WHERE id IN (SELECT id FROM outbox WHERE state='pending' AND channel=%s"
            " AND next_attempt_at <= extract(epoch FROM now())"
            f" AND (claimed_until IS NULL OR claimed_until < now() OR {_CLAIMER_LAPSED})"
            " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_ROW}",
            (self.instance, hold, channel, limit),
        )
        return sorted((_outbox_row(r) for r in rows), key=lambda row: row.id)

    async def record(self, updates: list[OutboxUpdate]) -> None:
        """Outcomes of sends and the fallback rows they cause, at once; held in memory
        while the database cannot write (head answers as if recorded)."""
        self._held.add(updates)
        await self._held.flush(self._write_outcomes, _held_failure)

    async def _write_outcomes(self, batch: list[OutboxUpdate]) -> None:
        async def write(conn: AsyncConnection[Any]) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(
                    "UPDATE outbox SET state=%s, attempts=%s, next_attempt_at=%s, last_error=%s,"
                    " done_at=%s, claimed_by=NULL, claimed_until=NULL WHERE id=%s",
                    [
                        (u.state, u.attempts, u.next_attempt_at, u.error, u.done_at, u.row.id)
                        for u in batch
                    ],
                )
                fallbacks = [
                    (
                        u.row.dedup_key,
                        channel,
                        u.row.incident_id,
                        u.row.kind,
                        u.row.created_at,
                        dumps(u.row.payload),
                        u.done_at or u.row.created_at,
                    )
                    for u in batch
                    for channel in u.fallbacks
                ]
                if fallbacks:
                    await cur.executemany(_INSERT_NOTE, fallbacks)

        await self._run(write)

    async def pending_counts(self) -> dict[str, int]:
        rows = await self._run(
            _fetch,
            "SELECT channel, COUNT(*) FROM outbox WHERE state='pending' GROUP BY channel",
            (),
        )
        return self._held.adjust({r[0]: int(r[1]) for r in rows})

    async def deliveries(self) -> list[tuple[str, str, str]]:
        rows = await self._run(
            _fetch, "SELECT dedup_key, channel, state FROM outbox ORDER BY id", ()
        )
        return [(r[0], r[1], r[2]) for r in rows]

    # -- the engine lease ----------------------------------------------------------------
    async def take_lease(self, ttl: float) -> int | None:
        """Take or renew the engine lease for `ttl` seconds of database time.

        A conditional update: it succeeds only while this process holds the lease
        or the lease has expired. Each change of holder increments the token, which
        the holder's writes carry (persist checks it). Returns the token, or None
        while another live process holds it.
        """
        rows = await self._run(
            _fetch,
            "INSERT INTO leases(name, holder, holder_name, token, expires_at)"
            " VALUES (%s, %s, %s, 1, now() + make_interval(secs => %s))"
            " ON CONFLICT (name) DO UPDATE SET holder=excluded.holder,"
            " holder_name=excluded.holder_name, expires_at=excluded.expires_at,"
            " token=leases.token + CASE WHEN leases.holder=excluded.holder THEN 0 ELSE 1 END"
            " WHERE leases.holder=excluded.holder OR leases.expires_at < now()"
            " RETURNING token",
            (ENGINE, self.instance, self.agent, ttl),
        )
        return int(rows[0][0]) if rows else None

    async def release_lease(self) -> None:
        """Give the lease up at a clean stop, so the next holder need not wait it out."""
        await self._run(
            _execute,
            "UPDATE leases SET expires_at=now() - interval '1 second' WHERE name=%s AND holder=%s",
            (ENGINE, self.instance),
        )

    async def fleet_results(self, seq: int, exclude_agent: str) -> tuple[int, list[dict[str, Any]]]:
        """Results other agents wrote after `seq`: (the newest seq, rows shaped like
        load_results). For this agent's view of the fleet and the engine holder's
        escalation alike. A write whose number was taken before a later one but
        committed after it is seen at that check's next write, one interval late."""
        # As one JSON text (decoded at once) rather than rows of typed columns: the
        # engine holder reads every other agent's results every second.
        top, text = (
            await self._run(
                _fetch,
                "SELECT max(seq), coalesce(json_agg(json_build_object('name', check_name,"
                " 'type', type, 'status', status, 'message', message, 'facts', facts,"
                " 'duration_seconds', duration_seconds, 'finished_at', finished_at,"
                " 'agent', agent) ORDER BY seq), '[]')::text"
                " FROM check_results WHERE seq > %s AND agent <> %s",
                (seq, exclude_agent),
            )
        )[0]
        rows = json.loads(text)
        for row in rows:
            row["facts"] = json.loads(row["facts"])  # text: a fact may be NaN
        return max(seq, int(top or 0)), rows

    async def claim_ids(self, ids: list[int], hold: float = 60.0) -> set[int]:
        """Claim these pending rows for this process (FOR UPDATE SKIP LOCKED, like
        `claim`): the outbox lane picks and groups its rows, then sends only those
        it claimed, so two agents never send the same row at once."""
        if not ids:
            return set()
        rows = await self._run(
            _fetch,
            "UPDATE outbox SET claimed_by=%s, claimed_until=now() + make_interval(secs => %s)"
            " WHERE id IN (SELECT id FROM outbox WHERE id = ANY(%s) AND state='pending'"
            " AND (claimed_until IS NULL OR claimed_until < now() OR claimed_by=%s"
            f" OR {_CLAIMER_LAPSED}) FOR UPDATE SKIP LOCKED) RETURNING id",
            (self.instance, hold, ids, self.instance),
        )
        return {int(r[0]) for r in rows}

    # -- membership ----------------------------------------------------------------------
    async def heartbeat(
        self, version: str, config_hash: str, checks: int, ttl: float
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, float]:
        """Renew this process's row in fleet_agents (live for `ttl` seconds of database
        time) and read the fleet: (every member row, live or lapsed, this one as just
        written; the engine lease's holder or None; the database's now). One statement:
        three round trips every third of a lease were a fixed share of every agent's
        CPU. Rows lapsed for a day are dropped (a lapsed agent stays visible until then).
        """
        text = await self._run(
            _fetch_value,
            _HEARTBEAT,
            {
                "instance": self.instance,
                "name": self.agent,
                "version": version,
                "config_hash": config_hash,
                "checks": checks,
                "ttl": ttl,
                "lease": ENGINE,
            },
        )
        if time.monotonic() - self._swept_at >= 600.0:  # a day's lapse: no hurry
            await self._run(
                _execute, "DELETE FROM fleet_agents WHERE expires_at < now() - interval '1 day'", ()
            )
            self._swept_at = time.monotonic()
        fleet = json.loads(text)
        return list(fleet["members"]), fleet["holder"], float(fleet["now"])

    async def leave(self) -> None:
        """At a clean stop: the fleet need not wait out this agent's lease."""
        await self._run(_execute, "DELETE FROM fleet_agents WHERE instance=%s", (self.instance,))


# -- helpers run inside a transaction -------------------------------------------------
async def migrate(conn: AsyncConnection[Any]) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS vaktpost_schema ("
            " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM vaktpost_schema")
        row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise PostgresStoreError(
                f"state store schema version {version} is newer than this vaktpost "
                f"({len(MIGRATIONS)}); refusing to touch it"
            )
        for number in range(version + 1, len(MIGRATIONS) + 1):
            for statement in _statements(MIGRATIONS[number - 1]):
                await conn.execute(statement)
            await conn.execute("INSERT INTO vaktpost_schema(version) VALUES (%s)", (number,))
            log.info("state store migrated", extra={"version": number})


async def schema_version(conn: AsyncConnection[Any]) -> int:
    cur = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM vaktpost_schema")
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def _check_fence(conn: AsyncConnection[Any], fence: int | None) -> None:
    if fence is None:
        return
    # FOR SHARE: a take of the lease waits for this transaction, so nothing written
    # under the old token can commit after a new holder has taken over.
    cur = await conn.execute("SELECT token FROM leases WHERE name=%s FOR SHARE", (ENGINE,))
    row = await cur.fetchone()
    if row is None or int(row[0]) != fence:
        current = None if row is None else int(row[0])
        raise FencedError(f"engine lease token {fence} is stale (current: {current})")


async def _read_state(conn: AsyncConnection[Any]) -> EngineState:
    state = EngineState()
    for (data,) in await (await conn.execute("SELECT data FROM alert_checks")).fetchall():
        track = CheckTrack.from_json(json.loads(data))
        state.checks[track.name] = track
    cur = await conn.execute("SELECT data FROM incidents WHERE resolved_at IS NULL")
    for (data,) in await cur.fetchall():
        incident = Incident.from_json(json.loads(data))
        state.incidents[incident.id] = incident
    for (data,) in await (await conn.execute("SELECT data FROM silences")).fetchall():
        silence = Silence.from_json(json.loads(data))
        state.silences[silence.id] = silence
    meta = dict(await (await conn.execute("SELECT key, value FROM alert_meta")).fetchall())
    cur = await conn.execute(
        "SELECT (SELECT COALESCE(MAX(id), 0) FROM incidents),"
        " (SELECT COALESCE(MAX(id), 0) FROM silences)"
    )
    top = await cur.fetchone()
    assert top is not None
    state.next_incident_id = max(int(meta.get("next_incident_id", 1)), int(top[0]) + 1)
    state.next_silence_id = max(int(meta.get("next_silence_id", 1)), int(top[1]) + 1)
    return state


async def _probe_write(conn: AsyncConnection[Any]) -> None:
    await conn.execute(_UPSERT_META, ("store_probe", repr(time.time())))


def _held_failure(exc: BaseException) -> bool:
    """A write the database refused for its own trouble: hold the outcomes and retry."""
    return is_store_failure(exc) or isinstance(exc, psycopg_pool.PoolTimeout)


def _outbox_row(r: tuple[Any, ...]) -> OutboxRow:
    return OutboxRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8])


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


# A claim dies with its claimer: once the claiming process's membership lease has
# lapsed (killed mid-send), its rows go to another agent after one lease, not after
# the claim's whole hold. A claimer without a row (not yet published, stopped
# cleanly) keeps the hold.
_CLAIMER_LAPSED = (
    "EXISTS (SELECT 1 FROM fleet_agents f"
    " WHERE f.instance = outbox.claimed_by AND f.expires_at < now())"
)
_ROW = "id, dedup_key, channel, incident_id, kind, payload, attempts, next_attempt_at, created_at"
# The fleet's members and the engine lease's holder as JSON, for heartbeat: one
# text value to decode instead of a row of typed columns per agent.
_MEMBERS_JSON = (
    "SELECT coalesce(json_agg(json_build_object('instance', instance, 'name', name,"
    " 'version', version, 'config_hash', config_hash, 'checks', checks,"
    " 'started_at', extract(epoch FROM started_at), 'seen_at', extract(epoch FROM seen_at),"
    " 'expires_at', extract(epoch FROM expires_at), 'live', expires_at > now())"
    " ORDER BY name, started_at), '[]') FROM {rows}"
)
_HOLDER_JSON = (
    "SELECT json_build_object('agent', holder_name, 'instance', holder, 'token', token,"
    " 'expires_at', extract(epoch FROM expires_at), 'live', expires_at > now())"
    " FROM leases WHERE name=%(lease)s"
)
# The statement's snapshot does not see its own upsert: the members are the others'
# rows plus the one it returns.
_HEARTBEAT = (
    "WITH me AS (INSERT INTO fleet_agents(instance, name, version, config_hash, checks,"
    " seen_at, expires_at) VALUES (%(instance)s, %(name)s, %(version)s, %(config_hash)s,"
    " %(checks)s, now(), now() + make_interval(secs => %(ttl)s)) ON CONFLICT (instance)"
    " DO UPDATE SET version=excluded.version, config_hash=excluded.config_hash,"
    " checks=excluded.checks, seen_at=now(), expires_at=excluded.expires_at"
    " RETURNING instance, name, version, config_hash, checks, started_at, seen_at,"
    " expires_at)"
    " SELECT json_build_object('now', extract(epoch FROM now()), 'members', ("
    + _MEMBERS_JSON.format(
        rows="(SELECT instance, name, version, config_hash, checks, started_at, seen_at,"
        " expires_at FROM fleet_agents WHERE instance <> %(instance)s UNION ALL"
        " SELECT * FROM me) AS m"
    )
    + f"), 'holder', ({_HOLDER_JSON}))::text"
)
_UPSERT_RESULTS = (
    "INSERT INTO check_results(check_name, type, status, message, facts, duration_seconds,"
    " finished_at, agent) SELECT r.name, r.type, r.status, r.message, r.facts,"
    " r.duration_seconds, r.finished_at, %s FROM json_to_recordset(%s::json) AS r(name text,"
    " type text, status text, message text, facts text, duration_seconds float8,"
    " finished_at float8)"
    " ON CONFLICT (check_name) DO UPDATE SET type=excluded.type, status=excluded.status,"
    " message=excluded.message, facts=excluded.facts,"
    " duration_seconds=excluded.duration_seconds, finished_at=excluded.finished_at,"
    " agent=excluded.agent, seq=nextval('check_results_seq')"
)
_UPSERT_INCIDENT = (
    "INSERT INTO incidents(id, department, system, status, started_at, resolved_at, data)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
    " status=excluded.status, resolved_at=excluded.resolved_at, data=excluded.data"
)
_INSERT_EVENT = (
    "INSERT INTO incident_events(incident_id, at, kind, step, channels, message)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
)
# A (dedup key, channel) pair is queued once: a re-run of the same step cannot double it.
_INSERT_NOTE = (
    "INSERT INTO outbox(dedup_key, channel, incident_id, kind, created_at, payload,"
    " next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (dedup_key, channel) DO NOTHING"
)
_UPSERT_META = (
    "INSERT INTO alert_meta(key, value) VALUES (%s, %s)"
    " ON CONFLICT (key) DO UPDATE SET value=excluded.value"
)
