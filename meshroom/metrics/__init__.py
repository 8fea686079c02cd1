"""Prometheus metrics of a meshroom server (needs ``pip install 'meshdoc[metrics]'``).

`MetricsExtension` reads the server's counters and counts its activity events when
Prometheus scrapes; ``meshroom serve --metrics`` serves it at ``/metrics`` (or on
``--metrics-port``). docs/activity.md lists every metric.
"""

from __future__ import annotations

from ._extension import MetricsExtension as MetricsExtension

__all__ = ["MetricsExtension"]
