"""Backup readiness: could each system be restored within its RPO, right now?

Pure: config + the latest result of every check + now -> the readiness JSON of
DESIGN.md. A backup is ready when its newest copy is younger than the RPO, its
last verification passed (within 2 x check_every for restic/borg), and, for
restic/borg, a restore test passed within `restore_test_max_age`. Every "not
ready" carries its reasons in plain words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agent.config import BackupRef, Config, Department, System
from checks.base import CheckConfig, CheckResult
from core.humanize import ago, duration, rfc3339, size
from core.i18n import text
from core.status import Status

# A system is down while one of its checks is critical, or unreachable: its users
# cannot reach it either, whatever the cause (DESIGN, Incidents and escalation).
DOWN = frozenset({Status.CRITICAL, Status.UNREACHABLE})
Json = dict[str, Any]


def result_from_json(data: Mapping[str, Any]) -> CheckResult:
    """A result as the store keeps it (see Store.load_results_sync)."""
    return CheckResult(
        Status.parse(str(data["status"])),
        str(data.get("message", "")),
        {k: float(v) for k, v in (data.get("facts") or {}).items()},
        float(data.get("duration_seconds") or 0.0),
        float(data.get("finished_at") or 0.0),
    )


def _en(key: str, **params: object) -> str:
    """A reason as the JSON keeps it, in English; pages translate it (core/i18n/reasons.py)."""
    return text("en", key, **params)


def _checks_by_name(config: Config) -> dict[str, CheckConfig]:
    return {c.name: c for c in config.checks}


def _verification(check: CheckConfig, facts: Mapping[str, float], now: float) -> list[str]:
    if check.backup_kind == "reported":  # a job's own report is all there is to judge
        return []
    ok = facts.get("verify_ok")
    passed_at = facts.get("verified_at")
    if check.backup_kind == "files":
        if getattr(check, "checksum_file", None) is None:
            return []
        if ok == 0.0:
            return [_en("reason_checksum_failed", when=ago(now, facts["verify_at"]))]
        return [] if passed_at is not None else [_en("reason_checksum_never")]
    if ok == 0.0:
        return [_en("reason_repository_failed", when=ago(now, facts["verify_at"]))]
    every = getattr(check, "check_every", None)
    if passed_at is None:
        never = "reason_repository_never_off" if every is None else "reason_repository_never"
        return [_en(never)]
    window = 2 * every if every is not None else None
    if window is not None and now - passed_at > window:
        age, within = duration(now - passed_at), duration(window)
        return [_en("reason_repository_stale", age=age, window=within)]
    return []


def _restore(
    check: CheckConfig, ref: BackupRef, facts: Mapping[str, float], now: float
) -> list[str]:
    if check.backup_kind != "repository":
        return []  # a plain file is its own restore; DESIGN asks no restore test of it
    if facts.get("restore_ok") == 0.0:
        return [_en("reason_restore_failed", when=ago(now, facts["restore_test_at"]))]
    passed_at = facts.get("restore_tested_at")
    if passed_at is None:
        return [_en("reason_restore_never")]
    if now - passed_at > ref.restore_test_max_age:
        age, limit = duration(now - passed_at), duration(ref.restore_test_max_age)
        return [_en("reason_restore_stale", age=age, limit=limit)]
    return []


def _file_shape(check: CheckConfig, facts: Mapping[str, float]) -> list[str]:
    if check.backup_kind != "files":
        return []
    reasons = []
    min_size = getattr(check, "min_size", 0)
    current = facts.get("size_bytes")
    if current is not None and current < min_size:
        reasons.append(_en("reason_below_min_size", size=size(current), min_size=size(min_size)))
    limit = getattr(check, "max_shrink_percent", None)
    shrink = facts.get("shrink_percent", 0.0)
    if limit is not None and shrink > limit:
        reasons.append(_en("reason_shrank", shrink=f"{shrink:.0f}%", limit=f"{limit:g}%"))
    return reasons


def backup_reasons(
    ref: BackupRef, check: CheckConfig | None, result: CheckResult | None, now: float
) -> list[str]:
    if check is None:
        return [_en("reason_not_configured", check=ref.check)]
    noun = check.backup_noun
    if not check.is_backup:
        return [_en("reason_not_backup", check=ref.check, type=check.type)]
    if result is None:
        return [_en("reason_no_result")]
    newest = result.facts.get("last_success_timestamp")
    if newest is None:
        # Nothing else can be judged when the repository could not even be listed.
        if result.status is Status.UNKNOWN:
            return [_en("reason_unchecked", detail=result.message)]
        return [_en("reason_none_found", noun=noun, detail=result.message)]
    reasons = []
    age = max(0.0, now - newest)
    if age > ref.rpo:
        reasons.append(_en("reason_too_old", noun=noun, age=duration(age), rpo=duration(ref.rpo)))
    reasons += _file_shape(check, result.facts)
    reasons += _verification(check, result.facts, now)
    reasons += _restore(check, ref, result.facts, now)
    return reasons


def backup_json(
    ref: BackupRef, check: CheckConfig | None, result: CheckResult | None, now: float
) -> Json:
    facts = result.facts if result else {}
    newest = facts.get("last_success_timestamp")
    reasons = backup_reasons(ref, check, result, now)
    return {
        "check": ref.check,
        "type": check.type if check else None,
        "status": result.status.label if result else None,
        "rpo_seconds": ref.rpo,
        "age_seconds": None if newest is None else round(max(0.0, now - newest), 3),
        "newest_at": rfc3339(newest),
        "verified_at": rfc3339(facts.get("verified_at")),
        "restore_tested_at": rfc3339(facts.get("restore_tested_at")),
        "restore_test_max_age_seconds": ref.restore_test_max_age,
        "ready": not reasons,
        "reasons": reasons,
    }


def system_up(system: System, results: Mapping[str, CheckResult]) -> bool | None:
    """Down when one of its checks is critical or unreachable; None when none has run.

    This is the verdict without an incident engine (the CLI); the daemon's
    document takes the engine's instead (see `merge_extras`).
    """
    seen = [results[c].status for c in system.checks if c in results]
    if not seen:
        return None
    return not DOWN.intersection(seen)


def system_json(
    system: System,
    checks: Mapping[str, CheckConfig],
    results: Mapping[str, CheckResult],
    now: float,
) -> Json:
    backups = [
        backup_json(ref, checks.get(ref.check), results.get(ref.check), now)
        for ref in system.backups
    ]
    return {
        "id": system.id,
        "name": system.title,
        "up": system_up(system, results),
        "ready": all(b["ready"] for b in backups),
        "reasons": [f"{b['check']}: {r}" for b in backups for r in b["reasons"]],
        "rto_seconds": system.rto,
        "mtpd_seconds": system.mtpd,
        "backups": backups,
    }


def department_json(
    dept: Department,
    checks: Mapping[str, CheckConfig],
    results: Mapping[str, CheckResult],
    now: float,
) -> Json:
    systems = [system_json(s, checks, results, now) for s in dept.systems]
    # The daemon's incident engine knows RTO/MTPD breaches and overrides `state`
    # through Agent.department_extras; from results alone we can tell degraded only.
    return {
        "id": dept.id,
        "name": dept.title,
        "state": "degraded" if any(s["up"] is False for s in systems) else "normal",
        "ready": all(s["ready"] for s in systems),
        "systems": systems,
    }


def merge_extras(doc: Json, extras: Iterable[Mapping[str, Mapping[str, Any]]]) -> Json:
    """Merge per-department extras (department id -> keys) into a report, in place.

    A `systems` extra maps system id -> keys merged into that system (the
    engine's `up`); every other key replaces the department's own (`state`).
    """
    for extra in extras:
        for dept in doc["departments"]:
            keys = dict(extra.get(dept["id"], {}))
            per_system = keys.pop("systems", {})
            dept.update(keys)
            for system in dept["systems"]:
                system.update(per_system.get(system["id"], {}))
    return doc


def report(
    config: Config,
    results: Mapping[str, CheckResult],
    now: float,
    department: str | None = None,
) -> Json:
    """The readiness JSON of DESIGN.md. Raises KeyError for an unknown department id."""
    depts = list(config.departments)
    if department is not None:
        depts = [d for d in depts if d.id == department]
        if not depts:
            raise KeyError(department)
    checks = _checks_by_name(config)
    return {
        "generated_at": rfc3339(now),
        "departments": [department_json(d, checks, results, now) for d in depts],
    }


def backup_checks(config: Config, department: str | None = None) -> list[str]:
    """Names of the configured checks that departments rely on as backups."""
    known = _checks_by_name(config)
    names: list[str] = []
    for dept in config.departments:
        if department is not None and dept.id != department:
            continue
        for system in dept.systems:
            for ref in system.backups:
                if ref.check in known and ref.check not in names:
                    names.append(ref.check)
    return names
