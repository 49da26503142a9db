"""`vaktpost incident significant|reported|report`: significant incidents on a running agent."""

from __future__ import annotations

import argparse
import json
from typing import Any

from agent.cli.client import add_remote_arguments, request
from agent.cli.errors import Subparsers

STAGES = ("early_warning", "notification", "final_report")
STAGE_TITLES = {
    "early_warning": "Early warning",
    "notification": "Incident notification",
    "final_report": "Final report",
}


def register(sub: Subparsers[argparse.ArgumentParser]) -> None:
    incident = sub.add_parser("incident", help="significant incidents and their report drafts")
    commands = incident.add_subparsers(dest="incident_command", required=True)

    mark = commands.add_parser("significant", help="mark significant: starts the report clocks")
    mark.add_argument("incident", type=_incident_id, metavar="ID")
    mark.add_argument("--comment", default="")
    add_remote_arguments(mark)
    mark.set_defaults(handler=cmd_significant)

    sent = commands.add_parser("reported", help="mark a report stage as sent")
    sent.add_argument("incident", type=_incident_id, metavar="ID")
    sent.add_argument("stage", choices=STAGES)
    add_remote_arguments(sent)
    sent.set_defaults(handler=cmd_reported)

    draft = commands.add_parser("report", help="print the pre-filled report draft")
    draft.add_argument("incident", type=_incident_id, metavar="ID")
    draft.add_argument("--format", choices=["md", "json"], default="md")
    add_remote_arguments(draft)
    draft.set_defaults(handler=cmd_report)


def _incident_id(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError("an incident id is a number, e.g. 12")
    return int(text)


def cmd_significant(args: argparse.Namespace) -> int:
    body = {"comment": args.comment} if args.comment else {}
    doc = request(args, "POST", f"/api/v1/incidents/{args.incident}/significant", body)
    print(f"incident {args.incident} is significant; report deadlines:")
    _print_stages(doc)
    return 0


def cmd_reported(args: argparse.Namespace) -> int:
    path = f"/api/v1/incidents/{args.incident}/reported"
    doc = request(args, "POST", path, {"stage": args.stage})
    _print_stages(doc)
    return 0


def _print_stages(doc: dict[str, Any]) -> None:
    for stage in doc["stages"]:
        state = f"sent {stage['reported_at']}" if stage["reported_at"] else "open"
        if stage["overdue"]:
            state = "OVERDUE"
        print(f"  {stage['stage']:<14} due {stage['deadline']}  {state}")


def cmd_report(args: argparse.Namespace) -> int:
    doc = request(args, "GET", f"/api/v1/incidents/{args.incident}/report")
    if args.format == "json":
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(render_markdown(doc), end="")
    return 0


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    from core.durations import format_duration

    return format_duration(seconds)


def render_markdown(doc: dict[str, Any]) -> str:
    """The draft as Markdown: facts filled in, the judgement left to the person filing."""
    where = f"{doc['impacted'][0]['department'] or '-'}/{doc['impacted'][0]['system']}"
    lines = [
        f"# Incident report draft: incident {doc['incident_id']} ({where})",
        "",
        f"- Agent: {doc['agent']}",
        f"- Detected: {doc['started_at']}",
        f"- Resolved: {doc['resolved_at'] or 'not yet (open)'}",
        f"- Downtime: {_minutes(doc['downtime_seconds'])}",
        f"- RTO breached: {'yes' if doc['rto_breached'] else 'no'};"
        f" MTPD breached: {'yes' if doc['mtpd_breached'] else 'no'}",
        f"- Root cause: {doc['root_cause'] or 'see checks'}"
        + (f" (caused by incident {doc['caused_by']})" if doc["caused_by"] else ""),
        f"- Failing checks: {', '.join(doc['checks']) or '-'}",
        "",
        "## What happened",
        "",
        "_Describe the incident, its likely cause and whether it was malicious._",
        "",
        "## Departments and systems hit",
        "",
        "| department | system | RTO | MTPD | fallback used |",
        "|---|---|---|---|---|",
    ]
    for hit in doc["impacted"]:
        fallback = " ".join((hit["fallback"] or "-").split())
        lines.append(
            f"| {hit['department_name'] or hit['department'] or '-'}"
            f" | {hit['system_name'] or hit['system']} | {_minutes(hit['rto_seconds'])}"
            f" | {_minutes(hit['mtpd_seconds'])} | {fallback} |"
        )
    lines += ["", "## Report stages", ""]
    significance = doc["significant"]
    if significance is None:
        lines.append(
            "Not marked significant: `vaktpost incident significant ID` starts the clocks."
        )
    else:
        lines.append(
            f"Marked significant {significance['marked_at']} by {significance['marked_by']}"
            f" ({significance['reason']})."
        )
        lines.append("")
        for stage in significance["stages"]:
            sent = stage["reported_at"]
            state = f"sent {sent} by {stage['reported_by']}" if sent else "not sent"
            if stage["overdue"]:
                state += ", OVERDUE"
            lines.append(f"- {STAGE_TITLES[stage['stage']]}: due {stage['deadline']}; {state}")
    lines += ["", "## Acknowledgements", ""]
    lines += [f"- {a['at']}: {a['message']}" for a in doc["acknowledgements"]] or ["- none"]
    lines += ["", "## Timeline", ""]
    for event in doc["timeline"]:
        channels = f" [{', '.join(event['channels'])}]" if event.get("channels") else ""
        lines.append(f"- {event['at']} {event['kind']}{channels}: {event.get('message', '')}")
    return "\n".join(lines) + "\n"
