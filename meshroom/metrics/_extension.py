"""`MetricsExtension`: the server's metrics in Prometheus's text format.

Two sources, both read only when Prometheus scrapes (nothing is exported per update):

- the server's own counters (`Server.stats`: updates and bytes in and out, the relay
  latency and journal write histograms), which the server keeps because this
  extension says ``uses_stats = True``, and its state (rooms, connections,
  participants by kind, bytes held for storage);
- activity events (`on_activity`), counted as they pass: auth refusals by reason,
  storage failures, snapshot writes, agent runs, tool calls and their latency, LLM tokens.

```py
metrics = MetricsExtension()
server = Server(extensions=[metrics])
app = create_app(server, extra_routes=[Mount("/metrics", app=metrics.asgi_app())])
```
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..server._hooks import ActivityPayload, Extension
from ..server._stats import Histogram

__all__ = ["MetricsExtension"]

#: Auth refusal reasons kept as label values; any other reason counts as "other" (a
#: reason can name a room, which would make one time series per room).
_REASONS = {
    "missing token",
    "token expired",
    "token revoked",
    "token not accepted",
    "token required",
    "no token",
    "invalid token",
    "bad signature",
}

#: Usage fields of the model APIs (chat completions, responses) and what they count.
_TOKEN_KINDS = {
    "prompt_tokens": "prompt",
    "completion_tokens": "completion",
    "input_tokens": "prompt",
    "output_tokens": "completion",
}


class MetricsExtension(Extension, Collector):
    """Count what the server does, for Prometheus (see the module docstring).

    Args:
        registry: where the metrics are registered (default: a registry of its own,
            so two servers in one process do not collide).
    """

    #: The server keeps its relay counters only when an extension asks for them.
    uses_stats = True
    priority = -50

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.server: Any = None
        self.refusals: Counter[str] = Counter()
        self.storage_failures: Counter[str] = Counter()
        self.agent_runs: Counter[str] = Counter()
        self.tokens: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.snapshot_seconds = Histogram()
        self.tool_seconds = Histogram()
        self.tool_errors = 0
        self.registry.register(self)

    def attach_server(self, server: Any) -> None:
        """Read `server`'s counters and state at each scrape (the server calls it)."""
        self.server = server

    def asgi_app(self) -> Any:
        """An ASGI app answering with the metrics (mount it at ``/metrics``)."""
        return make_asgi_app(self.registry)

    # -- counting activity -----------------------------------------------------------------

    async def on_activity(self, payload: ActivityPayload) -> None:
        """Count the event by type, and what its type measures."""
        event = payload.event
        kind = payload.type
        self.events[kind] += 1
        if kind == "auth.refused":
            reason = str(event.get("reason", ""))
            self.refusals[reason if reason in _REASONS else _reason_class(event)] += 1
        elif kind == "storage.failed":
            self.storage_failures[str(event.get("what", "unknown"))] += 1
        elif kind == "document.saved":
            self.snapshot_seconds.observe(_number(event.get("ms")) / 1000)
        elif kind == "agent.run":
            self.agent_runs[
                "error" if event.get("error") else str(event.get("stop", "answer"))
            ] += 1
            tokens = event.get("tokens")
            if isinstance(tokens, dict):
                for name, value in tokens.items():
                    if name in _TOKEN_KINDS:
                        self.tokens[_TOKEN_KINDS[name]] += int(_number(value))
        elif kind == "agent.tool_call":
            self.tool_seconds.observe(_number(event.get("ms")) / 1000)
            if event.get("ok") is False:
                self.tool_errors += 1

    # -- exporting ---------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        """The metric families, read now (called by prometheus_client at each scrape)."""
        server = self.server
        if server is not None:
            yield from self._server_state(server)
            yield from self._server_counters(server)
        yield _counter(
            "meshroom_auth_refusals", "Connections refused, by reason.", "reason", self.refusals
        )
        yield _counter(
            "meshroom_storage_failures",
            "Failed storage writes (journal, log, snapshot); each retried.",
            "what",
            self.storage_failures,
        )
        yield _counter(
            "meshroom_agent_runs", "Agent runs, by how they ended.", "stop", self.agent_runs
        )
        yield _counter(
            "meshroom_llm_tokens", "LLM tokens agents reported, by kind.", "kind", self.tokens
        )
        yield _histogram(
            "meshroom_tool_call_seconds", "How long agents' tool calls took.", self.tool_seconds
        )
        yield _counter(
            "meshroom_tool_call_errors",
            "Agents' tool calls that failed.",
            None,
            {"": self.tool_errors},
        )
        yield _histogram(
            "meshroom_storage_snapshot_seconds",
            "How long writing a document's snapshot took.",
            self.snapshot_seconds,
        )
        yield _counter("meshroom_activity_events", "Activity events, by type.", "type", self.events)

    def _server_state(self, server: Any) -> Iterator[Metric]:
        rooms = [server.room(name) for name in server.room_names()]
        rooms = [room for room in rooms if room is not None]
        yield _gauge("meshroom_rooms_open", "Rooms open in this process.", len(rooms))
        yield _gauge("meshroom_connections", "Open connections.", server._connections)
        kinds: Counter[str] = Counter({"person": 0, "agent": 0})
        held = 0
        for room in rooms:
            for entry in room.presence.local_entries("participants").values():  # connected here
                kinds[str(entry.get("kind", "person"))] += 1
            held += sum(document.unwritten_bytes for document in room.documents.values())
        family = GaugeMetricFamily(
            "meshroom_participants", "Participants in open rooms, by kind.", labels=["kind"]
        )
        for kind, count in sorted(kinds.items()):
            family.add_metric([kind], count)
        yield family
        for extension in server.extensions:
            pending = getattr(extension, "pending_bytes", None)
            storage = getattr(extension, "storage", None)
            if pending is None and storage is not None:
                pending = getattr(storage, "pending_bytes", None)
            if callable(pending):
                held += pending()
        yield _gauge(
            "meshroom_storage_pending_bytes",
            "Bytes of accepted updates not yet written to storage.",
            held,
        )
        activity = server.activity
        dropped = activity.dropped + sum(
            getattr(extension, "events_dropped", 0) for extension in server.extensions
        )
        yield _counter(
            "meshroom_activity_dropped",
            "Activity events dropped (the log's store or a hook fell too far behind).",
            None,
            {"": dropped},
        )

    def _server_counters(self, server: Any) -> Iterator[Metric]:
        stats = server.stats
        yield _counter(
            "meshroom_updates_received", "Document updates accepted.", None, {"": stats.updates_in}
        )
        yield _counter(
            "meshroom_update_bytes_received",
            "Bytes of updates accepted.",
            None,
            {"": stats.bytes_in},
        )
        yield _counter(
            "meshroom_updates_sent",
            "Update messages queued to connections (one per receiver).",
            None,
            {"": stats.updates_out},
        )
        yield _counter(
            "meshroom_update_bytes_sent",
            "Bytes of update messages queued.",
            None,
            {"": stats.bytes_out},
        )
        yield _histogram(
            "meshroom_relay_latency_seconds",
            "From an update's arrival to its relay to the other connections.",
            stats.relay_seconds,
        )
        yield _histogram(
            "meshroom_storage_write_seconds",
            "How long making a batch of updates durable took (the journal write before relay).",
            stats.journal_seconds,
        )


def _reason_class(event: dict[str, Any]) -> str:
    code = event.get("code")
    if code == 4403:
        return "forbidden"
    if code == 4401:
        return "unauthenticated"
    return "other"


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(
    name: str, documentation: str, label: str | None, values: dict[str, int] | Counter[str]
) -> CounterMetricFamily:
    if label is None:
        return CounterMetricFamily(name, documentation, value=sum(values.values()))
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _histogram(name: str, documentation: str, histogram: Histogram) -> HistogramMetricFamily:
    buckets = [
        ("+Inf" if bound == float("inf") else repr(bound), count)
        for bound, count in histogram.cumulative()
    ]
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=histogram.total)
