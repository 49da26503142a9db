"""The apprise channel sends a real e-mail to an aiosmtpd SMTP sink (with AUTH)."""

from __future__ import annotations

from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from alerting.channels.apprise import AppriseConfig
from alerting.channels.interface import RetryableError
from alerting.channels.registry import build_channel
from tests.alerting.channels.test_channels_contract import PAYLOAD
from tests.helpers import free_port

PASSWORD = "smtp-Pa55word"


class Sink:
    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"


def authenticator(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Any:
    sink = Sink()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    yield sink, controller.port
    controller.stop()


def mailto(port: int, password: str) -> AppriseConfig:
    url = (
        f"mailto://oncall:{password}@127.0.0.1:{port}?smtp=127.0.0.1&secure=no"
        "&from=vaktpost@kommun.example&to=jour@kommun.example"
    )
    return AppriseConfig(type="apprise", urls=(url,), timeout=5)


async def test_mail_arrives(smtp: Any) -> None:
    sink, port = smtp
    channel = build_channel("mail", mailto(port, PASSWORD))
    await channel.send(PAYLOAD)
    (envelope,) = sink.messages
    assert envelope.rcpt_tos == ["jour@kommun.example"]
    message = message_from_bytes(envelope.original_content or b"")
    assert str(make_header(decode_header(message["Subject"]))) == "[ALERT] s"
    part = message.get_payload(0) if message.is_multipart() else message
    assert isinstance(part, Message)
    body = part.get_payload(decode=True)
    assert b"is down" in body


async def test_wrong_password_fails_without_leaking(smtp: Any) -> None:
    sink, port = smtp
    channel = build_channel("mail", mailto(port, "not-the-password"))
    with pytest.raises(RetryableError) as info:
        await channel.send(PAYLOAD)
    assert "not-the-password" not in str(info.value)
    assert sink.messages == []
