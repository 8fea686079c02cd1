"""The versions toolkit: an agent lists a document's versions, compares, restores.

It works on anything with the `meshroom.versions.Versions` methods (`list`, `diff`,
`restore`), named by duck type so the agents need not import the versions package. An
embedded agent finds its server's own (`VersionsExtension.versions`) when none is given;
a connected agent is given one (a `Versions` of its own process, or `VersionsClient`
over HTTP with an admin token). A restore is a forward edit: people see it arrive, and
it can be undone by restoring the ``before`` version it answers with.
"""

from __future__ import annotations

from typing import Any

from .._toolkit import Toolkit
from .._tools import ToolContext, tool

__all__ = ["server_versions", "versions_toolkit"]

#: Longest Markdown diff a tool returns whole (the model's context is the limit).
MAX_DIFF = 20_000


def server_versions(client: Any) -> Any:
    """The `Versions` of an embedded agent's server (None for a connected agent)."""
    server = getattr(client, "server", None)
    for extension in getattr(server, "extensions", ()):
        versions = getattr(extension, "versions", None)
        if versions is not None and hasattr(extension, "save_agent_version"):
            return versions
    return None


def versions_toolkit(versions: Any = None) -> Toolkit:
    """Tools over documents' versions: `list_versions`, `diff_version`, `restore_version`.

    Args:
        versions: a `Versions` (or anything with its `list`, `diff`, `restore`); None
            uses the embedded agent's server's.
    """

    def resolve(context: ToolContext) -> Any:
        found = versions if versions is not None else server_versions(context.client)
        if found is None:
            raise RuntimeError("this server keeps no versions (no VersionsExtension)")
        return found

    @tool(read_only=True)
    async def list_versions(context: ToolContext, path: str) -> list[dict[str, Any]]:
        """List a document's saved versions, oldest first (id, name, time, reason, author).

        Args:
            path: The document's path.
        """
        found = await resolve(context).list(context.room, path)
        return [
            {key: value for key, value in version.to_json().items() if key not in ("room", "path")}
            for version in found
        ]

    @tool(read_only=True)
    async def diff_version(
        context: ToolContext, path: str, version: str, to: str = "now"
    ) -> dict[str, Any]:
        """What changed in a document from a version to another one (or to now).

        Args:
            path: The document's path.
            version: A version id (or a unique prefix, a name, or "latest").
            to: The other version, or "now" for the document as it is.
        """
        changes = (await resolve(context).diff(context.room, path, version, to)).to_json()
        if len(changes["markdown"]) > MAX_DIFF:
            changes["markdown"] = changes["markdown"][:MAX_DIFF] + "\n… (cut)\n"
        return changes

    @tool
    async def restore_version(context: ToolContext, path: str, version: str) -> dict[str, Any]:
        """Bring a document back to a saved version (everyone sees it; it can be undone by
        restoring the "before" version this returns).

        Args:
            path: The document's path.
            version: The version id to restore (or a unique prefix, a name, "latest").
        """
        restored = await resolve(context).restore(
            context.room, path, version, author=getattr(context.agent, "name", None)
        )
        return {"restored": restored.version.id, "before": restored.before.id}

    return Toolkit(
        "versions",
        [list_versions, diff_version, restore_version],
        rules=[
            "Before restoring a version, diff it against now and say what will change.",
        ],
    )
