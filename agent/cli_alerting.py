"""`vaktpost drill | status | ack | silence`: rehearse a plan, or talk to a running agent."""

from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from agent.cli import EXIT_USAGE, CliError
from agent.configload import ConfigError
from agent.daemon import read_config
from alerting.channels.interface import DeliveryError
from alerting.channels.registry import build_channel
from alerting.drill import DrillError, DrillResult, drill_payloads, run_drill
from checks.base import format_duration, os_error_text, parse_duration
from checks.redact import printable

DEFAULT_URL = "http://127.0.0.1:9730"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    drill = sub.add_parser("drill", help="rehearse a system's outage on a simulated clock")
    drill.add_argument("-c", "--config", required=True)
    drill.add_argument("--system", required=True, metavar="DEPT/SYSTEM")
    drill.add_argument("--duration", default="12h")
    drill.add_argument("--ack-after", metavar="DURATION", help="acknowledge after this long")
    drill.add_argument("--recover-after", metavar="DURATION", help="recover after this long")
    drill.add_argument("--format", choices=["table", "json"], default="table")
    drill.add_argument("--send-to", metavar="CHANNEL", help="really send each step there")
    drill.set_defaults(handler=cmd_drill)

    status = sub.add_parser("status", help="open incidents and department states of an agent")
    _remote(status)
    status.add_argument("--format", choices=["table", "json"], default="table")
    status.set_defaults(handler=cmd_status)

    ack = sub.add_parser("ack", help="acknowledge an incident")
    ack.add_argument("incident", type=_incident_id, metavar="INCIDENT_ID")
    _remote(ack)
    ack.add_argument("--by")
    ack.add_argument("--comment", default="")
    ack.set_defaults(handler=cmd_ack)

    silence = sub.add_parser("silence", help="mute notifications for matching incidents")
    _remote(silence)
    silence.add_argument("--match", action="append", required=True, metavar="KEY=GLOB")
    silence.add_argument(
        "--for", dest="duration", required=True, metavar="DURATION", type=_duration
    )
    silence.add_argument("--comment", default="")
    silence.add_argument("--by")
    silence.set_defaults(handler=cmd_silence)


def _incident_id(text: str) -> int:
    # int() takes ' 1' and '١' (Arabic-Indic one) as 1: an ack must name its incident exactly.
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError("an incident id is a number, e.g. 12")
    return int(text)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _remote(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("VAKTPOST_URL", DEFAULT_URL))
    parser.add_argument("--user", help="operator name (password: VAKTPOST_PASSWORD or prompt)")


# -- drill -------------------------------------------------------------------------------
def cmd_drill(args: argparse.Namespace) -> int:
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


_FALLBACK_HEADING = {
    "sv": ("Reservrutin", "(ingen reservrutin angiven för systemet)"),
    "en": ("Fallback", "(no fallback routine configured for the system)"),
}


def print_drill(result: DrillResult) -> None:
    from agent.cli import print_table

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
    heading, none = _FALLBACK_HEADING.get(result.language, _FALLBACK_HEADING["en"])
    print(f"\n{heading}:")
    for line in (result.fallback or none).splitlines():
        print(f"  {line}".rstrip())


async def send_drill(result: DrillResult, name: str, config: Any, language: str) -> int:
    """Send the drill's notifications to one channel, each marked as a drill.

    Reports go to stderr: stdout stays the timeline (`--format json` parses).
    """
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


# -- talking to an agent -----------------------------------------------------------------------
def request(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(args.url.rstrip("/") + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if getattr(args, "user", None):
        password = os.environ.get("VAKTPOST_PASSWORD") or getpass.getpass("password: ")
        token = base64.b64encode(f"{args.user}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except (ValueError, AttributeError):
            message = exc.reason
        # 400/404/409/422: the arguments were wrong; anything else: the agent could not do it.
        code = EXIT_USAGE if exc.code in (400, 404, 409, 422) else 3
        raise CliError(f"{method} {path}: HTTP {exc.code}: {message}", code) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CliError(f"cannot reach {args.url}: {_why(exc)}") from None


def _why(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    if isinstance(reason, OSError):
        return os_error_text(reason)
    return str(reason or exc)


def cmd_status(args: argparse.Namespace) -> int:
    incidents = request(args, "GET", "/api/v1/incidents?state=open")["incidents"]
    if args.format == "json":
        print(json.dumps({"incidents": incidents}, indent=2, ensure_ascii=False))
        return 1 if incidents else 0
    from agent.cli import print_table

    if not incidents:
        print("no open incidents")
        return 0
    rows = [
        [
            str(i["id"]),
            f"{i['department'] or '-'}/{i['system']}",
            i["status"],
            format_duration(i["downtime_seconds"]),
            "" if i["current_step"] is None else str(i["current_step"]),
            i["next_step_due"] or "",
            i["acknowledged_by"] or "",
        ]
        for i in incidents
    ]
    print_table(["ID", "SYSTEM", "STATUS", "DOWN", "STEP", "NEXT STEP DUE", "ACKED BY"], rows)
    return 1


def cmd_ack(args: argparse.Namespace) -> int:
    body = {"by": args.by or args.user or getpass.getuser(), "comment": args.comment}
    incident = request(args, "POST", f"/api/v1/incidents/{args.incident}/ack", body)
    print(
        f"incident {incident['id']} acknowledged by {printable(str(incident['acknowledged_by']))}"
    )
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    matchers = {}
    for item in args.match:
        key, sep, glob = item.partition("=")
        if not sep or not key:
            print(f"--match {item!r}: use KEY=GLOB, e.g. check=treserva-*", file=sys.stderr)
            return 2
        matchers[key] = glob
    body = {
        "matchers": matchers,
        "duration_seconds": args.duration,
        "comment": args.comment,
        "created_by": args.by or args.user or getpass.getuser(),
    }
    silence = request(args, "POST", "/api/v1/silences", body)
    print(f"silence {silence['id']} until {silence['ends_at']}")
    return 0
