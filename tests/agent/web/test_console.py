"""The operator console in headless Chromium at phone and desktop sizes, in sv and
en: state words, fallback text, the ack form with its CSRF token, lang, viewport,
no horizontal overflow at 390 px, contrast of the state colours, page weight;
and the ack form end to end (DESIGN.md, History, the operator console)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest

from tests.alerting_fixtures import TcpTarget
from tests.helpers import ROOT, AgentProcess, free_port, require_binary, wait_until

SHOTS = ROOT / "docs" / "console"
PASSWORD = "correct horse battery"
CONFIG = """
agent:
  name: console
  listen: 127.0.0.1:{port}
  state_dir: {state}
  language: sv
  defaults: {{interval: 0.2s, timeout: 0.5s, failures_before_alert: 2}}
  web:
    users:
      ops: {{password_hash: "{hashed}", role: operator}}
      viewer: {{password_hash: "{hashed}", role: viewer}}
channels:
  oncall: {{type: log, default: true}}
checks:
  - {{name: journal, type: tcp, host: 127.0.0.1, port: {closed}}}
  - {{name: portal, type: tcp, host: 127.0.0.1, port: {open}}}
departments:
  - id: social
    name: Socialtjänsten
    systems:
      - {{id: case, name: Verksamhetssystem, checks: [journal], rto: 4h, mtpd: 1d,
          fallback: "Använd pappersblanketter i pärmen på expeditionen"}}
    escalation: [{{after: 0s, notify: [oncall]}}]
  - id: school
    name: Skolan
    systems:
      - {{id: web, name: Skolportalen, checks: [portal], rto: 8h}}
maintenance:
  - {{match: {{system: web}}, cron: "0 3 * * 6", duration: 2h, comment: patchning}}
"""


def chromium() -> str:
    return require_binary("chromium")


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    tmp = tmp_path_factory.mktemp("console")
    port = free_port()
    closed, portal = TcpTarget(), TcpTarget()
    portal.open()
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    cfg = tmp / "cfg.yaml"
    cfg.write_text(
        CONFIG.format(
            port=port, state=tmp / "s", hashed=hashed, closed=closed.port, open=portal.port
        )
    )
    with AgentProcess(cfg, tmp / "a.log", port=port) as proc:
        proc.wait_ready()
        wait_until(lambda: b'"social"' in proc.get("/api/v1/incidents?state=open")[1], 15, "open")
        wait_until(lambda: b'"up": true' in proc.get("/api/v1/departments")[1], 15, "portal up")
        yield proc
    closed.release()
    portal.release()


def http_request(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


def auth(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()


class Browser:
    """Headless Chromium driven over the DevTools protocol (a websocket, no driver)."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="vaktpost-chromium-")
        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        # Chromium names its DevTools port in the profile once it listens.
        active = Path(self.profile) / "DevToolsActivePort"

        def listening() -> bool:
            assert self.proc.poll() is None, "chromium exited"
            return active.exists() and len(active.read_text().split()) >= 2

        wait_until(listening, 30, "chromium's DevTools endpoint")
        port, path = active.read_text().split()[:2]
        self.ws_url = f"ws://127.0.0.1:{port}{path}"

    async def page(self, url: str, width: int, height: int, headers: dict[str, str],
                   shot: Path | None = None) -> dict[str, Any]:  # fmt: skip
        port = urllib.parse.urlsplit(self.ws_url).port
        async with aiohttp.ClientSession() as http:
            async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as r:
                target = json.loads(await r.text())
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                counter = 0

                async def call(method: str, **params: Any) -> dict[str, Any]:
                    nonlocal counter
                    counter += 1
                    await ws.send_json({"id": counter, "method": method, "params": params})
                    while True:
                        msg = await ws.receive_json(timeout=20)
                        if msg.get("id") == counter:
                            assert "error" not in msg, msg
                            return dict(msg.get("result", {}))
                        if msg.get("method") == "Page.loadEventFired":
                            loaded.set()

                loaded = asyncio.Event()
                await call("Page.enable")
                await call("Network.enable")
                await call("Network.setExtraHTTPHeaders", headers=headers)
                await call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                           deviceScaleFactor=1, mobile=width < 600)  # fmt: skip
                await call("Page.navigate", url=url)
                while not loaded.is_set():
                    msg = await ws.receive_json(timeout=20)
                    if msg.get("method") == "Page.loadEventFired":
                        loaded.set()
                result = await call("Runtime.evaluate", expression=PROBE, returnByValue=True)
                if shot is not None:
                    data = await call(
                        "Page.captureScreenshot", format="png", captureBeyondViewport=True
                    )
                    png = base64.b64decode(data["data"])
            async with http.get(f"http://127.0.0.1:{port}/json/close/{target['id']}"):
                pass
        if shot is not None:
            await asyncio.to_thread(shot.write_bytes, png)
        return dict(result["result"]["value"])

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# Read from the rendered page: what a person sees, and the colours the CSS gives it.
PROBE = """(() => {
  const q = s => Array.from(document.querySelectorAll(s));
  const colour = el => { const s = getComputedStyle(el); return [s.color, s.backgroundColor]; };
  return {
    lang: document.documentElement.lang,
    viewport: (document.querySelector('meta[name=viewport]') || {}).content || null,
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    states: q('[data-state]').map(e =>
      [e.closest('section').id, e.dataset.state, e.textContent.trim()]),
    words: q('[data-word]').map(e => [e.dataset.word, e.textContent.trim()]),
    fallback: q('.fallback').map(e => e.textContent.trim()),
    forms: q('form').map(f => ({action: f.getAttribute('action'), method: f.method,
      token: (f.querySelector('input[name=csrf_token]') || {}).value || ''})),
    colours: q('.banner, .word, button').map(colour),
    text: document.body.innerText,
    scripts: q('script').length,
  };
})()"""


def luminance(rgb: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", rgb)[:3]]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str) -> float:
    a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


WORDS = {
    "sv": {"degraded": "Störning", "normal": "Normalläge", "down": "Nere", "up": "I drift"},
    "en": {"degraded": "Degraded", "normal": "Normal", "down": "Down", "up": "Up"},
}


@pytest.mark.parametrize("lang", ["sv", "en"])
@pytest.mark.parametrize(("size", "width", "height"), [("phone", 390, 844), ("desktop", 1280, 900)])
def test_console_in_chromium(
    agent: AgentProcess, lang: str, size: str, width: int, height: int
) -> None:
    browser = Browser(chromium())
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        seen = asyncio.run(
            browser.page(f"{agent.base}/?lang={lang}", width, height,
                         {"Authorization": auth("ops")}, SHOTS / f"console-{size}-{lang}.png")
        )  # fmt: skip
    finally:
        browser.close()
    words = WORDS[lang]
    assert seen["lang"] == lang
    assert seen["viewport"] == "width=device-width, initial-scale=1"
    assert seen["scripts"] == 0
    assert ["dept-social", "degraded", words["degraded"]] in seen["states"]
    assert ["dept-school", "normal", words["normal"]] in seen["states"]
    assert ["down", words["down"]] in seen["words"] and ["up", words["up"]] in seen["words"]
    assert seen["fallback"] == ["Använd pappersblanketter i pärmen på expeditionen"]
    (form,) = seen["forms"]
    assert form["method"] == "post" and form["action"].startswith("/incidents/")
    assert re.fullmatch(r"\d+\.[A-Za-z0-9_-]{20,}", form["token"])
    if width == 390:
        assert seen["scrollWidth"] <= seen["clientWidth"] == 390
    for fg, bg in seen["colours"]:
        assert contrast(fg, bg) >= 4.5, (fg, bg)
    other = WORDS["en" if lang == "sv" else "sv"]["degraded"]
    assert other not in seen["text"]


def test_a_viewer_sees_no_ack_form_and_the_page_is_small(agent: AgentProcess) -> None:
    status, body = http_request(agent.base + "/", headers={"Authorization": auth("viewer")})
    assert status == 200 and b"csrf_token" not in body
    assert len(body) < 100 * 1024
    status, body = http_request(agent.base + "/", headers={"Authorization": auth("ops")})
    assert b'name="csrf_token"' in body


def _form(agent: AgentProcess, user: str) -> tuple[str, str]:
    _, body = http_request(agent.base + "/?lang=en", headers={"Authorization": auth(user)})
    match = re.search(
        rb'action="(/incidents/\d+/ack[^"]*)".*?name="csrf_token" value="([^"]+)"', body, re.S
    )
    assert match, body[:2000]
    return match[1].decode().replace("&amp;", "&"), match[2].decode()


def test_the_ack_form_end_to_end(agent: AgentProcess) -> None:
    action, token = _form(agent, "ops")
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    def post(data: dict[str, str], user: str) -> tuple[int, bytes]:
        return http_request(agent.base + action, "POST", urllib.parse.urlencode(data).encode(),
                            headers={**form, "Authorization": auth(user)})  # fmt: skip

    status, body = post({"comment": "x"}, "ops")
    assert status == 403 and b"CSRF" in body
    status, body = post({"comment": "x", "csrf_token": token + "x"}, "ops")
    assert status == 403
    status, body = post({"comment": "x", "csrf_token": token}, "viewer")
    assert status == 403 and b"operator" in body
    # another site's page cannot post it even with a token
    status, _ = http_request(agent.base + action, "POST", b"csrf_token=" + token.encode(),
                             headers={**form, "Authorization": auth("ops"),
                                      "Origin": "http://127.0.0.2:1"})  # fmt: skip
    assert status == 403
    status, body = post({"comment": "pappersrutin igång", "csrf_token": token}, "ops")
    assert status == 200 and b"ops" in body  # redirected to the incident's page
    incident = action.split("/")[2]
    doc = json.loads(agent.get(f"/api/v1/incidents/{incident}")[1])
    assert doc["acknowledged_by"] == "ops" and doc["ack_comment"] == "pappersrutin igång"


def test_incident_page_shows_the_timeline(agent: AgentProcess) -> None:
    incident = json.loads(agent.get("/api/v1/incidents?state=open")[1])["incidents"][0]["id"]
    status, body = agent.get(f"/incidents/{incident}?lang=en")
    assert status == 200
    text = body.decode()
    assert 'lang="en"' in text and 'data-kind="opened"' in text and 'data-kind="notify"' in text
    assert agent.get("/incidents/99999")[0] == 404
