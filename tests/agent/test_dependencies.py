"""depends_on with real probes: a failing dependent of a failing dependency is `unreachable`."""

from __future__ import annotations

from agent.results import ResultBook
from agent.runner import Runner
from checks.base import CheckConfig, Status
from checks.http import HttpConfig
from checks.link import LinkConfig
from checks.registry import build
from tests import net_fixtures
from tests.net_fixtures import config, context
from tests.net_servers import Targets

pki, targets = net_fixtures.pki, net_fixtures.targets


def setup(*configs: CheckConfig) -> tuple[ResultBook, Runner]:
    book = ResultBook()
    book.configure(configs)
    return book, Runner(book, 4)


async def run(book: ResultBook, runner: Runner, cfg: CheckConfig) -> Status:
    check = build(cfg, context())
    try:
        result = await runner.run(check)
    finally:
        close = getattr(check, "aclose", None)  # an http check owns a client session
        if close is not None:
            await close()
    book.record(cfg.name, result)
    return result.status


async def test_dependents_of_a_dead_uplink_are_unreachable(targets: Targets) -> None:
    dead = f"tcp://127.0.0.1:{targets.closed}"
    uplink = config(LinkConfig, name="uplink", type="link", targets=[dead])
    down = config(
        HttpConfig,
        name="web-down",
        type="http",
        url=f"http://127.0.0.1:{targets.closed}/",
        depends_on=["uplink"],
    )
    slow = config(
        HttpConfig,
        name="web-slow",
        type="http",
        url=targets.url("/slow"),
        timeout="300ms",
        depends_on=["uplink"],
    )
    fine = config(
        HttpConfig, name="web-fine", type="http", url=targets.url("/ok"), depends_on=["uplink"]
    )
    book, runner = setup(uplink, down, slow, fine)
    assert await run(book, runner, uplink) is Status.CRITICAL
    assert await run(book, runner, down) is Status.UNREACHABLE
    assert await run(book, runner, slow) is Status.UNREACHABLE
    assert await run(book, runner, fine) is Status.OK  # dependents keep being probed
    message = book.states["web-down"].result.message  # type: ignore[union-attr]
    assert message.startswith("unreachable: depends on uplink which is critical;")
    assert "connection refused" in message  # its own probe ran and says why


async def test_a_failing_dependent_of_a_healthy_dependency_is_critical(targets: Targets) -> None:
    uplink = config(
        LinkConfig, name="uplink", type="link", targets=[f"tcp://127.0.0.1:{targets.http}"]
    )
    down = config(
        HttpConfig,
        name="web",
        type="http",
        url=targets.url("/status/500"),
        depends_on=["uplink"],
    )
    book, runner = setup(uplink, down)
    assert await run(book, runner, uplink) is Status.OK
    assert await run(book, runner, down) is Status.CRITICAL


async def test_unreachable_propagates_down_a_chain(targets: Targets) -> None:
    dead = f"http://127.0.0.1:{targets.closed}/"
    a = config(HttpConfig, name="switch", type="http", url=dead)
    b = config(HttpConfig, name="router", type="http", url=dead, depends_on=["switch"])
    c = config(HttpConfig, name="app", type="http", url=dead, depends_on=["router"])
    book, runner = setup(a, b, c)
    assert await run(book, runner, a) is Status.CRITICAL
    assert await run(book, runner, b) is Status.UNREACHABLE
    assert await run(book, runner, c) is Status.UNREACHABLE
