"""`vaktpost readiness`: the backup-readiness report from the daemon's recorded results."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.cli.errors import EXIT_CANNOT_RUN, EXIT_USAGE, Subparsers

if TYPE_CHECKING:
    from agent.config import Config
    from agent.state.sqlite import Store
    from checks.base import CheckResult

EXIT_READY, EXIT_NOT_READY = 0, 1


async def _run_checks(config: Config, store: Store, names: list[str]) -> dict[str, CheckResult]:
    """Run backup checks here, with the daemon's store so verification state is shared."""
    from agent.results import ResultBook
    from agent.runtime import Runtime
    from checks.base import CheckContext

    book = ResultBook()
    ctx = CheckContext(Path(config.agent.state_dir), config.agent.name, store=store)
    runtime = Runtime(book, ctx, config.agent.max_concurrency)
    runtime.apply(tuple(c for c in config.checks if c.name in names))
    await runtime.run_once(names)
    fresh = {n: s.result for n, s in book.states.items() if s.result is not None}
    rows = []
    for name, result in fresh.items():
        data = result.to_json(name, config.check(name).type)
        rows.append((name, data["type"], {**data, "finished_at": result.finished_at}))
    await store.save_results(rows)  # so the next plain `readiness` sees them too
    return fresh


async def collect(config: Config, department: str | None, refresh: bool) -> dict[str, CheckResult]:
    from agent import readiness
    from agent.state.sqlite import Store

    store = Store(config.agent.state_dir)
    await store.open()
    try:
        recorded = await store.load_results()
        results = {n: readiness.result_from_json(d) for n, d in recorded.items()}
        wanted = readiness.backup_checks(config, department)
        missing = wanted if refresh else [n for n in wanted if n not in results]
        if missing:
            results |= await _run_checks(config, store, missing)
        return results
    finally:
        await store.close()


def render(report: dict[str, Any], fmt: str, lang: str) -> str:
    from agent.web import readiness_render

    if fmt == "json":
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    if fmt == "html":
        return readiness_render.page(report, lang)
    return readiness_render.table(report, lang)


def cmd_readiness(args: argparse.Namespace) -> int:
    import asyncio  # here: `vaktpost --help` builds this parser and needs no event loop

    from agent import readiness
    from agent.configload import ConfigError, read_config
    from agent.state.sqlite import StoreError

    try:
        config = read_config(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CANNOT_RUN
    if args.department and args.department not in {d.id for d in config.departments}:
        print(f"unknown department: {args.department}", file=sys.stderr)
        return EXIT_USAGE
    try:
        results = asyncio.run(collect(config, args.department, args.refresh))
    except (StoreError, OSError) as exc:
        print(f"cannot read the state store: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    report = readiness.report(config, results, time.time(), args.department)
    sys.stdout.write(render(report, args.format, config.agent.language))
    ready = all(d["ready"] for d in report["departments"])
    return EXIT_READY if ready else EXIT_NOT_READY


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "readiness",
        help="backup readiness per department (exit 0 ready, 1 not ready, 2 usage, 3 cannot run)",
    )
    parser.add_argument("-c", "--config", required=True)
    parser.add_argument("--department", metavar="ID", help="only this department")
    parser.add_argument("--format", choices=["table", "json", "html"], default="table")
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="run the backup checks now instead of using the daemon's latest results",
    )
    parser.set_defaults(handler=cmd_readiness)
