"""`VersionsClient`: a running server's versions over HTTP, with the `Versions` methods.

For whoever cannot reach the server's storage: ``meshroom version --url``, and agents in
another process (`versions_toolkit(VersionsClient(url, token=admin_token))`). It speaks
the routes of `version_routes` and gives back the same objects `Versions` does, so both
are used the same way. The token needs the room's admin grant.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from meshdoc.diff import Change, DocumentDiff

from .._exceptions import AuthenticationError, StorageError
from ._model import Version
from ._store import VersionNotFound
from ._versions import NOW, Restored

__all__ = ["VersionsClient"]


def http_base(url: str) -> str:
    """``http(s)://host:port`` for a server URL given as ws://, wss://, http:// or https://."""
    if url.startswith("ws://"):
        url = "http://" + url[len("ws://") :]
    elif url.startswith("wss://"):
        url = "https://" + url[len("wss://") :]
    return url.rstrip("/")


class VersionsClient:
    """The versions of a running server's documents, over HTTP.

    Args:
        url: the server (``http://127.0.0.1:8765``; ``ws://`` works too).
        token: a token with an admin grant for the rooms asked about (None: an open server
            refuses, as it has no admins).
        timeout: seconds per request (a restore of a large document takes a while).
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        self.base = http_base(url)
        self.token = token
        self.timeout = timeout

    async def _request(
        self, method: str, room: str, suffix: str, path: str, **params: str
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        target = f"{self.base}/rooms/{quote(room, safe='')}/versions{suffix}"
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            reply = await client.request(
                method,
                target,
                params={"path": path, **params},
                headers=headers,
            )
        if reply.status_code in (401, 403):
            raise AuthenticationError(
                _error(reply), code=4401 if reply.status_code == 401 else 4403
            )
        if reply.status_code == 404:
            raise VersionNotFound(_error(reply))
        if reply.status_code >= 400:
            raise StorageError(f"{target}: {reply.status_code} {_error(reply)}")
        return reply

    async def list(self, room: str, path: str) -> list[Version]:
        reply = await self._request("GET", room, "", path)
        return [_version(entry) for entry in reply.json()["versions"]]

    async def get(self, room: str, path: str, ref: str) -> Version:
        reply = await self._request("GET", room, f"/{quote(ref, safe='')}", path)
        return _version(reply.json())

    async def document_json(self, room: str, path: str, ref: str) -> dict[str, Any]:
        reply = await self._request("GET", room, f"/{quote(ref, safe='')}", path)
        return dict(reply.json()["document"])

    async def markdown(self, room: str, path: str, ref: str) -> str:
        reply = await self._request("GET", room, f"/{quote(ref, safe='')}", path, format="markdown")
        return reply.text

    async def read(self, room: str, path: str, ref: str) -> tuple[Version, bytes]:
        version = await self.get(room, path, ref)
        reply = await self._request(
            "GET", room, f"/{quote(version.id, safe='')}", path, format="yjs"
        )
        return version, reply.content

    async def save(self, room: str, path: str, name: str | None = None, **_: Any) -> Version:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        target = f"{self.base}/rooms/{quote(room, safe='')}/versions"
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            reply = await client.post(
                target, params={"path": path}, headers=headers, json={"name": name}
            )
        if reply.status_code in (401, 403):
            raise AuthenticationError(
                _error(reply), code=4401 if reply.status_code == 401 else 4403
            )
        if reply.status_code >= 400:
            raise StorageError(f"{target}: {reply.status_code} {_error(reply)}")
        return _version(reply.json())

    async def diff(self, room: str, path: str, a: str, b: str = NOW) -> DocumentDiff:
        reply = await self._request("GET", room, f"/{quote(a, safe='')}/diff", path, to=b)
        data = reply.json()
        return DocumentDiff([Change(**change) for change in data["changes"]], data["markdown"])

    async def restore(
        self, room: str, path: str, ref: str, *, author: str | None = None
    ) -> Restored:
        reply = await self._request("POST", room, f"/{quote(ref, safe='')}/restore", path)
        data = reply.json()
        return Restored(_version(data["restored"]), _version(data["before"]), data["update_bytes"])


def _version(data: dict[str, Any]) -> Version:
    fields = {key: data.get(key) for key in Version.__dataclass_fields__}
    return Version(**fields)  # type: ignore[arg-type]


def _error(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("error", reply.text))
    except ValueError:
        return reply.text
