"""What `meshroom serve` adds for versions: the extension and its HTTP routes.

Kept apart from `_serve` (which assembles storage, auth and the transport): versions are
written through the same provider as the documents, so the extension is built once that
provider exists, and only if it keeps versions (a provider without the `VersionStore`
methods serves documents without them, and the server says so once).
"""

from __future__ import annotations

import logging
from typing import Any

from ..server._hooks import Extension

__all__ = ["version_routes_of", "versions_extension"]

log = logging.getLogger("meshroom.server")


def versions_extension(
    provider: Any, *, interval_minutes: float | None, retention: str | None
) -> Extension | None:
    """The `VersionsExtension` writing through `provider`, or None if it keeps no versions.

    Raises:
        ValueError: `retention` is not ``ALL,HOURLY,DAILY`` days.
    """
    from ..versions import Retention, VersionsExtension, VersionsUnsupported

    parsed = Retention.parse(retention) if retention else Retention()
    interval = interval_minutes * 60 if interval_minutes else None
    try:
        return VersionsExtension(provider, interval=interval, retention=parsed)
    except VersionsUnsupported as error:
        log.warning("%s: no versions are kept", error)
        return None


def version_routes_of(server: Any) -> list[Any]:
    """The version routes of `server`'s `VersionsExtension` (none without one)."""
    from ..versions import VersionsExtension, version_routes

    for extension in server.extensions:
        if isinstance(extension, VersionsExtension):
            return version_routes(server, extension.versions)
    return []
