"""What `meshroom serve` adds to watch a server: the activity log, metrics and their routes.

Kept apart from `_serve` (which assembles storage, auth and the transport): the
activity log writes through the same storage provider as the documents, so it is
built once that provider exists; metrics need ``prometheus-client`` (the ``metrics``
extra) only when asked for.
"""

from __future__ import annotations

import logging
from typing import Any

from ..server._hooks import Extension

__all__ = ["activity_extension", "metrics_extension", "observe_routes", "serve_metrics_port"]

log = logging.getLogger("meshroom.server")

DAY = 24 * 3600.0


def activity_extension(
    provider: Any, *, retention_days: float | None, tool_details: bool
) -> Extension | None:
    """The `ActivityExtension` writing through `provider`, or None if it keeps no activity."""
    from ..activity import ActivityExtension, ActivityStore

    if not isinstance(provider, ActivityStore):
        log.warning("the storage %r keeps no activity logs: activity is not logged", provider)
        return None
    retention = retention_days * DAY if retention_days else None
    return ActivityExtension(provider, retention=retention, tool_details=tool_details)


def metrics_extension() -> Extension:
    """A `MetricsExtension` (raises a clear error when prometheus-client is missing)."""
    try:
        from ..metrics import MetricsExtension
    except ImportError as error:
        raise RuntimeError(
            "metrics need prometheus-client: pip install 'meshdoc[metrics]'"
        ) from error
    return MetricsExtension()


def observe_routes(server: Any, *, metrics_here: bool) -> list[Any]:
    """``GET /rooms/{room}/activity`` (with an activity log) and ``/metrics`` (when asked)."""
    from ..activity import ActivityExtension, ActivityLog, activity_route

    routes: list[Any] = []
    for extension in server.extensions:
        if isinstance(extension, ActivityExtension):
            routes.append(activity_route(server, ActivityLog(extension.store)))
        if metrics_here and hasattr(extension, "asgi_app") and hasattr(extension, "registry"):
            from starlette.routing import Mount

            routes.append(Mount("/metrics", app=extension.asgi_app()))
    return routes


def serve_metrics_port(server: Any, host: str, port: int) -> None:
    """Serve the server's metrics on their own port (a thread of prometheus-client's)."""
    from prometheus_client import start_http_server

    for extension in server.extensions:
        registry = getattr(extension, "registry", None)
        if registry is not None and hasattr(extension, "asgi_app"):
            start_http_server(port, addr=host, registry=registry)
            log.info("metrics at http://%s:%d/metrics", host, port)
            return
