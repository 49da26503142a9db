"""The console's on-call section and the /api/v1/oncall document, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.web.oncall import oncall_now, render_oncall_section
from tests.alerting_fixtures import base_config

PEOPLE = """
people:
  anna: {name: "Anna <Lind>", phone: "+46701234567", via: [oncall]}
  bertil: {name: Bertil Ek, phone: "+46707654321", via: [oncall]}
rotations:
  tib: {members: [anna, bertil], handoff: "MON 08:00", every: 1w}
"""
AT = datetime(2026, 3, 25, 12, 0, tzinfo=UTC).timestamp()


def test_document_names_who_is_on_duty_and_next_without_numbers() -> None:
    doc = oncall_now(base_config(PEOPLE), AT)
    assert doc["rotations"] == [
        {
            "rotation": "tib",
            "on_duty": {"id": "bertil", "name": "Bertil Ek"},
            "until": "2026-03-30T06:00:00Z",
            "next": {"id": "anna", "name": "Anna <Lind>"},
        }
    ]
    assert "+467" not in str(doc)


def test_console_section_is_escaped_local_and_empty_without_rotations() -> None:
    html = render_oncall_section(base_config(PEOPLE), "sv", AT)
    assert "<h2>Beredskap</h2>" in html
    assert "Bertil Ek" in html and "2026-03-30 08:00 CEST" in html
    assert "Anna &lt;Lind&gt;" in html and "<Lind>" not in html
    assert render_oncall_section(base_config(), "sv", AT) == ""
