"""E-mail through apprise to a real SMTP sink (aiosmtpd): the notice keeps its lines in
both the plain and the HTML part, carries the ack code and link, and the acknowledged
notice says who acked, how and with what comment."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message
from typing import Any

from alerting.acklinks import LinkSigner
from alerting.channels.apprise import AppriseConfig
from alerting.channels.registry import build_channel
from alerting.engine import IncidentEngine
from tests.alerting.channels.test_channels_apprise_smtp import PASSWORD, mailto, smtp
from tests.alerting_fixtures import base_config

__all__ = ["smtp"]  # the SMTP sink fixture, shared with the apprise channel's own tests
T0 = 1_709_535_600.0  # a Monday, 08:00 in Stockholm


def parts(envelope: Any) -> dict[str, str]:
    message = message_from_bytes(envelope.original_content or b"")
    found = {}
    for part in message.walk():
        if isinstance(part, Message) and not part.is_multipart():
            raw = part.get_payload(decode=True)
            assert isinstance(raw, bytes)
            found[part.get_content_type()] = raw.decode(part.get_content_charset() or "utf-8")
    return found


def engine_notices() -> tuple[dict[str, Any], dict[str, Any]]:
    """The firing notice of a real engine (with a code and a link) and its ack notice."""
    engine = IncidentEngine(base_config())
    engine.ack_link = LinkSigner(b"k" * 32, "http://127.0.0.1:9730").url
    for now in (T0, T0 + 1):
        out = engine.observe("web", "critical", "connection refused", now)
    (firing,) = [n.payload for n in out.notifications]
    ack = engine.acknowledge(firing["incident_id"], "Anna Lind", "on my way", T0 + 60, "sms")
    (acked,) = [n.payload for n in ack.notifications]
    return firing, acked


async def test_mail_keeps_its_lines_code_and_link(smtp: Any) -> None:
    sink, port = smtp
    config: AppriseConfig = mailto(port, PASSWORD)
    firing, acked = engine_notices()
    channel = build_channel("mail", config)
    await channel.send(firing)
    await channel.send(acked)
    first, second = (parts(e) for e in sink.messages)
    assert set(first) == {"text/plain", "text/html"}

    plain = first["text/plain"].replace("\r\n", "\n").splitlines()
    code, link = firing["ack_code"], firing["ack_url"]
    assert f"Reply K {code} to acknowledge" in plain
    assert f"Acknowledge by link: {link}" in plain
    assert "Fallback routine: Paper forms in binder B." in plain
    # Every line of the text is its own line of the HTML part too.
    html_lines = first["text/html"].replace("\r\n", "").split("<br>")
    assert len(html_lines) == len(firing["text"].splitlines()) - 1  # the title is the subject
    assert any(f"Reply K {code} to acknowledge" in line for line in html_lines)
    assert any(link.replace("&", "&amp;") in line for line in html_lines)

    ack_plain = second["text/plain"].replace("\r\n", "\n").splitlines()
    assert "Acknowledged by Anna Lind via sms." in ack_plain
    assert "Comment: on my way" in ack_plain
    assert not any(line.startswith("Reply K") for line in ack_plain), "acked: no code to reply"
