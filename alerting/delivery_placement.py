"""Which agents of a fleet deliver a channel (its `run_on`), and what becomes of the
notifications of a channel none of whose agents is live.

An agent whose name a channel's `run_on` does not match never starts that
channel's lane, so it never claims the channel's rows: only the host with the
modem sends SMS. When no live agent may deliver a channel, its pending rows wait
one `agent.fleet.lease` after the last of its agents lapsed (an agent restarted
by its supervisor is back within that; a host that lost power is not, and an
escalation cannot wait for it), then a live agent claims them and hands them to
the channel's `fallback` channels (state `skipped`, like a dead uplink). With no
fallback they wait for one of the channel's agents to return, and
`vaktpost_channel_undeliverable` says so. The wait is measured on the database's
clock (the lapsed agent's lease expiry), never an agent's.

Alone (no agent.store) there is no placement: one agent delivers every channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily

from alerting.channels.base import ChannelConfig
from core.placement import may_run

if TYPE_CHECKING:
    from alerting.outbox import Outbox, Placement

log = logging.getLogger("vaktpost.outbox")
HAND_OVER_BATCH = 500  # rows handed over per channel per look


class DeliveryPlacement:
    """This agent's view of who may deliver each channel, from the fleet's members."""

    def __init__(self, agent: str, lease: Callable[[], float]) -> None:
        self.agent = agent
        self.lease = lease  # read on every look: a reload may change agent.fleet.lease
        self.live: set[str] = {agent}
        self.lapsed: dict[str, float] = {}  # name -> when its lease expired (database time)
        self.now: float | None = None  # database time of the last look; None: none yet
        # channel -> database time since when no live agent may deliver it
        self._since: dict[str, float] = {}
        self._configs: dict[str, ChannelConfig] = {}  # as of the last look

    def delivers_here(self, config: ChannelConfig) -> bool:
        return may_run(config.run_on, self.agent)

    def observe(
        self,
        members: Iterable[Mapping[str, Any]],
        now: float,
        configs: Mapping[str, ChannelConfig],
    ) -> None:
        """Take a fresh look at the members (live or lapsed) at database time `now`."""
        live = {self.agent}  # running this code: live, whether or not its row is renewed yet
        lapsed: dict[str, float] = {}
        for member in members:
            name = str(member["name"])
            if member["live"]:
                live.add(name)
            else:
                lapsed[name] = max(lapsed.get(name, 0.0), float(member["expires_at"]))
        self.live = live
        self.lapsed = {n: at for n, at in lapsed.items() if n not in live}
        self.now = now
        for name in list(self._since):
            if configs.get(name) != self._configs.get(name):  # removed, or run_on changed
                del self._since[name]
        self._configs = dict(configs)
        for name, config in configs.items():
            self._update(name, config, now)

    def _update(self, name: str, config: ChannelConfig, now: float) -> None:
        if any(may_run(config.run_on, agent) for agent in self.live):
            if self._since.pop(name, None) is not None:
                log.warning("a live agent may deliver the channel again", extra={"channel": name})
            return
        if name in self._since:
            return
        # A stopped agent deletes its row: then the wait starts when this agent saw it.
        self._since[name] = max((self.lapsed[a] for a in self.down(config)), default=now)
        extra = {
            "channel": name,
            "agents": ", ".join(self.down(config)) or ", ".join(config.run_on),
            "fallback": ",".join(config.fallback),
            "wait_seconds": self.lease(),
        }
        if config.fallback:
            log.warning(
                "no live agent may deliver the channel: its notifications go to its"
                " fallback channels after the wait",
                extra=extra,
            )
        else:
            log.error(
                "no live agent may deliver the channel and it has no fallback: its"
                " notifications wait until one of its agents returns",
                extra=extra,
            )

    def down(self, config: ChannelConfig) -> list[str]:
        """The lapsed agents that may deliver the channel."""
        return sorted(a for a in self.lapsed if may_run(config.run_on, a))

    def undeliverable(self, name: str) -> bool:
        return name in self._since

    def overdue(self, name: str) -> bool:
        """No live agent may deliver it, and its agents have been gone a lease."""
        since = self._since.get(name)
        return since is not None and self.now is not None and self.now - since >= self.lease()

    def reason(self, name: str, config: ChannelConfig) -> str:
        agents = ", ".join(self.down(config)) or "every agent matching " + ", ".join(config.run_on)
        return f"no live agent may deliver {name}: {agents} down"


async def hand_over_overdue(placement: DeliveryPlacement, outbox: Outbox) -> int:
    """Hand the rows of overdue channels to their fallbacks; returns how many.

    The rows are claimed first: an agent whose lease lapsed while it still runs
    (a stalled database link) may be sending one of them right now.
    """
    handed = 0
    for name, config in list(outbox.configs.items()):
        if not config.fallback or not placement.overdue(name):
            continue
        rows = await outbox.store.head(name, HAND_OVER_BATCH)
        if rows and outbox.claim is not None:
            claimed = await outbox.claim([r.id for r in rows])
            rows = [r for r in rows if r.id in claimed]
        if rows:
            reason = placement.reason(name, config)
            await outbox.hand_over(name, config, rows, outbox.clock(), reason)
            handed += len(rows)
    return handed


def undeliverable_metric(placement: Placement | None, channels: Iterable[str]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(
        "vaktpost_channel_undeliverable",
        "1 while no live agent of the fleet may deliver the channel (its run_on).",
        labels=["channel"],
    )
    for name in sorted(channels):
        down = placement is not None and placement.undeliverable(name)
        gauge.add_metric([name], 1.0 if down else 0.0)
    return gauge
