"""Temporal SDK metrics in our Prometheus registry: one `/metrics` scrape per process shows the
SDK's (workflow/activity task latency, schedule-to-start, failures, polls) beside ours.

The SDK's core (Rust) records into a MetricBuffer; a daemon thread drains it every second
into counters, gauges and histograms that a prometheus_client Collector exposes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BufferedMetricUpdate,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

BUFFER_SIZE = 100_000
DRAIN_EVERY_S = 1.0
# Seconds: task and RPC latencies from milliseconds to the 10 s schedule-to-start timeouts.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
COUNT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0)

Labels = tuple[tuple[str, str], ...]


@dataclass
class _Histogram:
    buckets: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    observations: int = 0

    def observe(self, value: float) -> None:
        if not self.counts:
            self.counts = [0] * len(self.buckets)
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1
        self.total += value
        self.observations += 1


@dataclass
class _Series:
    kind: int
    description: str
    unit: str
    values: dict[Labels, float] = field(default_factory=dict)
    histograms: dict[Labels, _Histogram] = field(default_factory=dict)


def _labels(attributes: Mapping[str, object]) -> Labels:
    return tuple(sorted((str(key), str(value)) for key, value in attributes.items()))


def _prometheus_name(name: str) -> str:
    return name.replace(".", "_").replace("-", "_")


class TemporalMetricsCollector(Collector):
    """Holds what the SDK reported; `collect` drains first, so a scrape is up to date."""

    def __init__(self, buffer: MetricBuffer) -> None:
        self._buffer = buffer
        self._lock = threading.Lock()
        self._series: dict[str, _Series] = {}

    def apply(self, updates: Iterable[BufferedMetricUpdate]) -> None:
        with self._lock:
            for update in updates:
                metric = update.metric
                name = _prometheus_name(metric.name)
                series = self._series.get(name)
                if series is None:
                    series = self._series[name] = _Series(
                        int(metric.kind), metric.description or metric.name, metric.unit or ""
                    )
                labels = _labels(update.attributes)
                if series.kind == BUFFERED_METRIC_KIND_COUNTER:
                    series.values[labels] = series.values.get(labels, 0.0) + update.value
                elif series.kind == BUFFERED_METRIC_KIND_GAUGE:
                    series.values[labels] = float(update.value)
                else:
                    histogram = series.histograms.get(labels)
                    if histogram is None:
                        timed = series.unit in {"s", "seconds", "duration"} or "latency" in name
                        histogram = series.histograms[labels] = _Histogram(
                            LATENCY_BUCKETS if timed else COUNT_BUCKETS
                        )
                    histogram.observe(float(update.value))

    def drain(self) -> None:
        self.apply(self._buffer.retrieve_updates())

    def collect(self) -> Iterator[Metric]:
        self.drain()
        with self._lock:
            for name, series in sorted(self._series.items()):
                yield from _families(name, series)


def _families(name: str, series: _Series) -> Iterator[Metric]:
    names = sorted({key for labels in (*series.values, *series.histograms) for key, _ in labels})
    if series.kind == BUFFERED_METRIC_KIND_COUNTER:
        counter = CounterMetricFamily(name, series.description, labels=names)
        for labels, value in series.values.items():
            counter.add_metric(_values(labels, names), value)
        yield counter
    elif series.kind == BUFFERED_METRIC_KIND_GAUGE:
        gauge = GaugeMetricFamily(name, series.description, labels=names)
        for labels, value in series.values.items():
            gauge.add_metric(_values(labels, names), value)
        yield gauge
    else:
        family = HistogramMetricFamily(name, series.description, labels=names)
        for labels, histogram in series.histograms.items():
            buckets = [
                (str(bound), count)
                for bound, count in zip(histogram.buckets, histogram.counts, strict=True)
            ]
            buckets.append(("+Inf", histogram.observations))
            family.add_metric(_values(labels, names), buckets, histogram.total)
        yield family


def _values(labels: Labels, names: list[str]) -> list[str]:
    present = dict(labels)
    return [present.get(name, "") for name in names]


class TemporalMetrics:
    """The Runtime every Temporal client of this process uses, wired to the collector."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self._buffer = MetricBuffer(BUFFER_SIZE, MetricBufferDurationFormat.SECONDS)
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=self._buffer))
        self.collector = TemporalMetricsCollector(self._buffer)
        registry.register(self.collector)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._drain_loop, name="temporal-metrics", daemon=True
        )
        self._thread.start()

    def _drain_loop(self) -> None:
        # A full buffer drops updates; draining between scrapes keeps it far from full.
        while not self._stop.wait(DRAIN_EVERY_S):
            self.collector.drain()


_process_metrics: TemporalMetrics | None = None


def process_runtime() -> Runtime:
    """One Runtime per process (the SDK allows a few; metrics want exactly one)."""
    global _process_metrics  # noqa: PLW0603 - a process-wide singleton by nature
    if _process_metrics is None:
        _process_metrics = TemporalMetrics()
    return _process_metrics.runtime
