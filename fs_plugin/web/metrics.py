"""Prometheus metrics: what the call path did, and the health of what it depends on.

Per-call series (verdicts, latency, shadow hits) are updated by a decision
listener. Gauges that already live in the service (ESL connection, queues, spool,
counters of the transport) are read at scrape time by a collector, so there is one
source of truth and nothing to keep in sync. Each web server has its own registry:
two services in one process (tests, a lab) never mix their series.

Label values are trunk and rule ids from the policy, so cardinality is bounded by
the policy; calls on no known trunk are counted under ``trunk="unknown"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fs_plugin.transport.outbound import DecisionRecord

__all__ = ["Metrics"]

#: Decision latency: the deadline is ~250 ms; most calls take well under 5 ms.
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0,
)
_STORE_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.5, 1.0)


class _ServiceCollector(Collector):
    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        s = self._read()
        yield _gauge("fsp_esl_connected", "1 while the inbound event socket is connected "
                     "(-1: running without one)", s["esl_connected"])
        yield _gauge("fsp_outbound_accepting", "1 while the outbound server takes calls",
                     s["accepting"])
        yield _gauge("fsp_outbound_inflight", "calls being decided now", s["inflight"])
        yield _gauge("fsp_event_loop_lag_seconds", "last measured event loop lag", s["lag_s"])
        yield _gauge("fsp_outcome_queue_depth", "outcomes waiting for the statistics worker",
                     s["outcome_queue"])
        yield _gauge("fsp_noc_subscribers", "open NOC live streams", s["subscribers"])
        info = GaugeMetricFamily("fsp_policy_info", "the policy version in force",
                                 labels=["version"])
        info.add_metric([s["policy_version"]], 1)
        yield info
        for name, value in s["outbound"].items():
            yield _counter(f"fsp_outbound_{name}", f"outbound server: {name}", value)
        for name, value in (s["inbound"] or {}).items():
            yield _counter(f"fsp_inbound_{name}", f"inbound event socket: {name}", value)
        for name, value in s["service"].items():
            yield _counter(f"fsp_service_{name}", f"service: {name}", value)
        for name, value in (s["journal"] or {}).items():
            yield _gauge(f"fsp_journal_{name}", f"journal: {name}", value)
        yield _counter("fsp_noc_events_dropped", "live events a slow NOC page missed",
                       s["bus_dropped"])


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    # prometheus_client appends _total itself; keep names free of a second suffix.
    return CounterMetricFamily(name.removesuffix("_total"), doc, value=float(value))


class Metrics:
    """The registry of one web server; ``observe`` is the decision listener."""

    def __init__(self, read_service: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls = Counter("fsp_calls", "calls decided, by verdict, trunk and deciding rule",
                             ["verdict", "trunk", "rule"], registry=r)
        self.fallbacks = Counter("fsp_fallbacks", "decisions from a trunk's on_error fallback",
                                 ["trunk"], registry=r)
        self.shadow = Counter("fsp_shadow_hits", "shadow-mode rules that fired",
                              ["rule", "trunk"], registry=r)
        self.latency = Histogram("fsp_decision_latency_seconds",
                                 "channel data in to verdict out", buckets=_LATENCY_BUCKETS,
                                 registry=r)
        self.store_latency = Histogram("fsp_counter_store_latency_seconds",
                                       "counter store ping round trip (probe)",
                                       buckets=_STORE_BUCKETS, registry=r)
        self.store_errors = Counter("fsp_counter_store_probe_errors",
                                    "counter store pings that failed or timed out", registry=r)
        self.store_up = Gauge("fsp_counter_store_up", "1 when the last counter store ping "
                              "answered", registry=r)
        self.reloads = Counter("fsp_policy_reloads", "policy reload attempts by result and "
                               "trigger", ["result", "trigger"], registry=r)
        r.register(_ServiceCollector(read_service))

    def observe(self, record: DecisionRecord) -> None:
        d = record.decision
        trunk = d.trunk or "unknown"
        self.calls.labels(d.verdict.value, trunk, d.rule or "").inc()
        self.latency.observe(record.latency_s)
        if d.fallback:
            self.fallbacks.labels(trunk).inc()
        for hit in d.shadow_hits:
            self.shadow.labels(hit.rule, trunk).inc()
