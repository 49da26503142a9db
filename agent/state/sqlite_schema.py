"""The SQLite store's schema, one migration per version (PRAGMA user_version)."""

MIGRATIONS: list[str] = [
    # 1: latest result per check, and small per-check state (e.g. last verification)
    """
    CREATE TABLE check_results (
        check_name TEXT PRIMARY KEY,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        facts TEXT NOT NULL,
        duration_seconds REAL NOT NULL,
        finished_at REAL NOT NULL
    );
    CREATE TABLE check_state (
        check_name TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (check_name, key)
    );
    """,
    # 2: the incident engine: check tracks, incidents and their timeline, silences,
    # the outbox of notifications, and counters (next incident id ...)
    """
    CREATE TABLE alert_checks (
        check_name TEXT PRIMARY KEY,
        data TEXT NOT NULL
    );
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        department TEXT,
        system TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at REAL NOT NULL,
        resolved_at REAL,
        data TEXT NOT NULL
    );
    CREATE INDEX incidents_by_resolved ON incidents(resolved_at);
    CREATE TABLE incident_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER NOT NULL,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        step INTEGER,
        channels TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX incident_events_by_incident ON incident_events(incident_id);
    CREATE TABLE silences (
        id INTEGER PRIMARY KEY,
        ends_at REAL NOT NULL,
        data TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dedup_key TEXT NOT NULL,
        channel TEXT NOT NULL,
        incident_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        created_at REAL NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT NOT NULL DEFAULT '',
        done_at REAL,
        UNIQUE (dedup_key, channel)
    );
    CREATE INDEX outbox_by_state ON outbox(state, channel, id);
    CREATE TABLE alert_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 3: history: every check status change, and the audit trail of what people
    # did (ack, silence, reload); both pruned past agent.history with old incidents
    """
    CREATE TABLE check_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        check_name TEXT NOT NULL,
        at REAL NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX check_history_by_check ON check_history(check_name, at);
    CREATE INDEX check_history_by_at ON check_history(at);
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_log_by_at ON audit_log(at);
    CREATE INDEX incidents_by_started ON incidents(started_at);
    """,
    # 4: every restore test a backup check ran (when, passed or not, how long), for
    # the monthly report's "restore tests against RTO"; pruned past agent.history
    """
    CREATE TABLE restore_tests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        check_name TEXT NOT NULL,
        at REAL NOT NULL,
        ok INTEGER NOT NULL,
        seconds REAL,
        UNIQUE(check_name, at)
    );
    CREATE INDEX restore_tests_by_at ON restore_tests(at);
    """,
]
