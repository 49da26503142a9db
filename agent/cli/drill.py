"""`vaktpost drill`: rehearse a system's outage on a simulated clock."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from agent.cli.errors import Subparsers
from agent.cli.table import print_table

if TYPE_CHECKING:
    from alerting.drill import DrillResult


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    drill = sub.add_parser("drill", help="rehearse a system's outage on a simulated clock")
    drill.add_argument("-c", "--config", required=True)
    drill.add_argument("--system", required=True, metavar="DEPT/SYSTEM")
    drill.add_argument("--duration", default="12h")
    drill.add_argument("--ack-after", metavar="DURATION", help="acknowledge after this long")
    drill.add_argument("--recover-after", metavar="DURATION", help="recover after this long")
    drill.add_argument("--format", choices=["table", "json"], default="table")
    drill.add_argument("--send-to", metavar="CHANNEL", help="really send each step there")
    drill.set_defaults(handler=cmd_drill)


def cmd_drill(args: argparse.Namespace) -> int:
    import asyncio

    from agent.configload import ConfigError, read_config
    from alerting.drill import DrillError, run_drill
    from core.durations import parse_duration

    try:
        config = read_config(args.config)
        result = run_drill(
            config,
            args.system,
            parse_duration(args.duration),
            time.time(),
            parse_duration(args.ack_after) if args.ack_after else None,
            parse_duration(args.recover_after) if args.recover_after else None,
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except (DrillError, ValueError) as exc:
        print(f"drill: {exc}", file=sys.stderr)
        return 2
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        print_drill(result)
    if args.send_to:
        if args.send_to not in config.channels:
            print(f"drill: unknown channel {args.send_to!r}", file=sys.stderr)
            return 2
        channel = config.channels[args.send_to]
        return asyncio.run(send_drill(result, args.send_to, channel, config.agent.language))
    return 0


def print_drill(result: DrillResult) -> None:
    from core.durations import format_duration
    from core.i18n import words

    rows = [
        [
            format_duration(e["at_seconds"]),
            e["kind"],
            "" if e["step"] is None else str(e["step"]),
            ",".join(e["channels"]),
            e["message"],
        ]
        for e in result.to_json()["events"]
    ]
    print_table(["AT", "EVENT", "STEP", "CHANNELS", "MESSAGE"], rows)
    t = words(result.language)
    heading, none = t["drill_cli_fallback"], t["drill_cli_no_fallback"]
    print(f"\n{heading}:")
    for line in (result.fallback or none).splitlines():
        print(f"  {line}".rstrip())


async def send_drill(result: DrillResult, name: str, config: Any, language: str) -> int:
    """Send the drill's notifications to one channel, each marked as a drill.

    Reports go to stderr: stdout stays the timeline (`--format json` parses).
    """
    from alerting.channels.interface import DeliveryError
    from alerting.channels.registry import build_channel
    from alerting.drill import drill_payloads

    channel = build_channel(name, config)
    code = 0
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(result.start))
    run_id = f"{stamp}.{int(result.start * 1000) % 1000:03d}Z"
    try:
        for payload in drill_payloads(result, run_id, language):
            try:
                await channel.send(payload)
                print(f"drill: sent {payload['dedup_key']} to {name}", file=sys.stderr)
            except DeliveryError as exc:
                print(f"drill: could not send {payload['dedup_key']}: {exc}", file=sys.stderr)
                code = 1
    finally:
        await channel.close()
    return code
