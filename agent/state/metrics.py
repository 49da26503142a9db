"""The state store's health on /metrics: can it write, did it fail, was it replaced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.state.sqlite import Store

if TYPE_CHECKING:  # psycopg is ~9 MiB of RSS: imported only by an agent on PostgreSQL
    from agent.state.postgres import PostgresStore

P = "vaktpost_"


class StoreCollector(Collector):
    def __init__(self, store: Store | PostgresStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        store = self._store
        yield GaugeMetricFamily(
            f"{P}store_up",
            "1 while the state store is open and its last write succeeded.",
            value=1.0 if store.is_open and store.writable else 0.0,
        )
        yield CounterMetricFamily(
            f"{P}store_write_failures",
            "Transactions the state store failed (disk full, I/O error, damage).",
            value=store.write_failures,
        )
        yield GaugeMetricFamily(
            f"{P}store_recovered_timestamp_seconds",
            "When a damaged state store was last moved aside and replaced (0: never).",
            value=store.recovered_at or 0.0,
        )
