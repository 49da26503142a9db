"""`vaktpost validate` on people and rotations: each mistake is one FILE:LINE error."""

from __future__ import annotations

import pytest

from agent.configload import ConfigError, load_config_text

GOOD = """
agent: {name: t, state_dir: /tmp/vaktpost-test-unused}
people:
  anna: {name: Anna Lind, phone: "+46701234567", email: anna@kommun.se, via: [sms, mail]}
  bertil: {name: Bertil Ek, phone: "+46707654321", via: [sms]}
rotations:
  tib:
    members: [anna, bertil]
    handoff: "MON 08:00"
    every: 1w
    overrides:
      - {person: bertil, from: "2026-12-24T08:00", to: "2026-12-27T08:00"}
      - {person: anna, from: "2026-12-31T08:00", to: "2027-01-02T08:00"}
channels:
  sms: {type: command, argv: [/bin/true, "{phone}"]}
  mail: {type: apprise, urls: ["mailtos://smtp.kommun.local?to={email}"]}
  log: {type: log}
checks:
  - {name: web, type: tcp, host: 127.0.0.1, port: 1}
departments:
  - id: d
    systems: [{id: s, checks: [web]}]
    escalation:
      - {after: 0m, notify: [log, "rotation:tib"]}
      - {after: 1h, notify: ["person:anna"]}
"""


def test_a_good_people_config_loads() -> None:
    config = load_config_text(GOOD, "good.yaml")
    assert config.rotations["tib"].members == ("anna", "bertil")
    assert config.people["anna"].via == ("sms", "mail")


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ('"person:anna"', '"person:ana"', "unknown person 'ana'"),
        ("members: [anna, bertil]", "members: [anna, berit]", "unknown person 'berit'"),
        ("members: [anna, bertil]", "members: []", "at least one member"),
        (
            '"rotation:tib"]}\n      - {after: 1h',
            '"rotation:tb"]}\n      - {after: 1h',
            "unknown rotation 'tb'",
        ),
        ("{person: bertil,", "{person: cecilia,", "unknown person 'cecilia'"),
        ('from: "2026-12-31T08:00"', 'from: "2026-12-26T08:00"', "overlaps override #1"),
        ("via: [sms]}", "via: [mail]}", "channel 'mail' needs {email}, bertil has no email"),
        ("via: [sms]}", "via: [smss]}", "unknown channel 'smss'"),
        ("notify: [log, ", "notify: [sms, ", "channel 'sms' needs {phone} of a person"),
    ],
)
def test_each_mistake_is_an_error(old: str, new: str, error: str) -> None:
    assert old in GOOD
    with pytest.raises(ConfigError) as caught:
        load_config_text(GOOD.replace(old, new, 1), "bad.yaml")
    text = str(caught.value)
    assert error in text, text
    assert "bad.yaml:" in text
