"""HTTP endpoints for a room's versions, for holders of the room's admin grant.

The token comes as for a connection (``?token=`` or ``Authorization: Bearer``) and goes
through the server's own auth chain for the room document: 401 for a missing or invalid
token, 403 for a token (or an open server) without an admin grant for the room. The
document is the ``path`` query parameter (document paths hold slashes); a version is
named by its id, a unique prefix of one, its name or ``latest``.

- ``GET /rooms/{room}/versions?path=P``: ``{"versions": [...]}``, oldest first;
- ``POST /rooms/{room}/versions?path=P``: saves a named version (JSON body ``{"name"}``);
- ``GET /rooms/{room}/versions/{ref}?path=P``: its metadata and document as JSON
  (``&format=markdown``: Markdown text; ``&format=yjs``: its Yjs update);
- ``GET /rooms/{room}/versions/{ref}/diff?path=P&to=REF``: the structural and the
  Markdown diff to ``to`` (default ``now``);
- ``POST /rooms/{room}/versions/{ref}/restore?path=P``: restores it; answers the
  restored and the ``before`` versions (restore ``before`` to undo it).

Writes are authored by the token's participant (its id, and its name where it has one).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .._exceptions import RoomNameError, StorageError
from ..protocol._names import validate_path, validate_room
from ..server._admin import AdminRefused, admin_access
from ..server._hooks import Access
from ._store import VersionNotFound

if TYPE_CHECKING:
    from ._versions import Versions

__all__ = ["version_routes"]

MAX_NAME = 200


def version_routes(server: Any, versions: Versions) -> list[Route]:
    """The routes serving `versions` (the server's `VersionsExtension.versions`) to admins."""

    async def admitted(request: Request) -> tuple[str, str, Access] | JSONResponse:
        room = request.path_params["room"]
        path = request.query_params.get("path", "")
        try:
            validate_room(room)
            if not validate_path(path):
                raise RoomNameError("give the document as ?path=", name=path)
        except RoomNameError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        client = f"{request.client.host}:{request.client.port}" if request.client else None
        try:
            access = await admin_access(
                server,
                room,
                query_token=request.query_params.get("token"),
                headers=request.headers,
                client=client,
                what="the versions",
            )
        except AdminRefused as refused:
            return JSONResponse({"error": str(refused)}, status_code=refused.status)
        return room, path, access

    async def guarded(request: Request, work: Any) -> Response:
        checked = await admitted(request)
        if isinstance(checked, JSONResponse):
            return checked
        room, path, access = checked
        try:
            return await work(room, path, access)
        except VersionNotFound as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        except StorageError as error:
            return JSONResponse({"error": f"storage failed: {error}"}, status_code=503)

    async def listing(request: Request) -> Response:
        async def work(room: str, path: str, access: Access) -> Response:
            found = await versions.list(room, path)
            return JSONResponse(
                {"room": room, "path": path, "versions": [v.to_json() for v in found]}
            )

        return await guarded(request, work)

    async def save(request: Request) -> Response:
        async def work(room: str, path: str, access: Access) -> Response:
            body: Any = {}
            raw = await request.body()
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    return JSONResponse({"error": "the body is not JSON"}, status_code=400)
            name = body.get("name") if isinstance(body, dict) else None
            if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
                return JSONResponse(
                    {"error": f"name must be a string of at most {MAX_NAME} characters"},
                    status_code=400,
                )
            version = await versions.save(
                room, path, name or None, author=_author(access), reason="named"
            )
            assert version is not None
            return JSONResponse(version.to_json(), status_code=201)

        return await guarded(request, work)

    async def show(request: Request) -> Response:
        async def work(room: str, path: str, access: Access) -> Response:
            ref = request.path_params["ref"]
            fmt = request.query_params.get("format", "json")
            if fmt == "yjs":
                version, state = await versions.read(room, path, ref)
                return Response(state, media_type="application/octet-stream")
            if fmt == "markdown":
                return PlainTextResponse(await versions.markdown(room, path, ref))
            if fmt != "json":
                return JSONResponse({"error": "format is json, markdown or yjs"}, status_code=400)
            version = await versions.get(room, path, ref)
            document = await versions.document(room, path, version.id)
            return JSONResponse({**version.to_json(), "document": document.to_json()})

        return await guarded(request, work)

    async def diff(request: Request) -> Response:
        async def work(room: str, path: str, access: Access) -> Response:
            ref = request.path_params["ref"]
            to = request.query_params.get("to", "now")
            changes = await versions.diff(room, path, ref, to)
            return JSONResponse({"from": ref, "to": to, **changes.to_json()})

        return await guarded(request, work)

    async def restore(request: Request) -> Response:
        async def work(room: str, path: str, access: Access) -> Response:
            restored = await versions.restore(
                room, path, request.path_params["ref"], author=_author(access)
            )
            return JSONResponse(
                {
                    "restored": restored.version.to_json(),
                    "before": restored.before.to_json(),
                    "update_bytes": restored.update_bytes,
                }
            )

        return await guarded(request, work)

    return [
        Route("/rooms/{room}/versions", listing, methods=["GET"]),
        Route("/rooms/{room}/versions", save, methods=["POST"]),
        Route("/rooms/{room}/versions/{ref}", show, methods=["GET"]),
        Route("/rooms/{room}/versions/{ref}/diff", diff, methods=["GET"]),
        Route("/rooms/{room}/versions/{ref}/restore", restore, methods=["POST"]),
    ]


def _author(access: Access) -> str:
    return access.name or access.participant_id
