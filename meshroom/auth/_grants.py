"""Grants: which rooms and document paths a token opens, and whether it may write.

A grant names a room (or a room pattern) and a list of document path patterns,
read-write or read-only. Patterns know two wildcards and nothing else, so a room
or path name never needs escaping by accident:

- ``*`` matches any run of characters, ``/`` included (``notes/*`` admits
  ``notes/plan.md`` and ``notes/2026/q4.md``; ``*`` admits every path);
- ``?`` matches exactly one character.

The room document (path ``""``: participants, messages) is admitted by every
grant for the room, whatever its path patterns: anyone allowed into a room can
see who else is there. It is writable when at least one of the room's grants is
read-write, and read-only otherwise. A grant with no path patterns opens the
room document alone.

When several grants match one room and path, the most generous wins: one
read-write grant makes the connection read-write.

Three permissions say what a participant may do in the room beyond documents,
each on by default (a token without them means what it always meant): `messages`
(post room messages, even with a read-only grant), `offer_tools` (offer toolkits
to the room) and `call_tools` (call the tools others offer). They are the room's,
whatever the path: one grant for the room that allows one allows it
(`resolve_permissions`). In the claim, only a permission that is off is written
(``"messages": false``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Grant",
    "GrantMode",
    "is_admin",
    "match_pattern",
    "resolve_mode",
    "resolve_permissions",
]

GrantMode = Literal["read-write", "read-only"]

_MAX_PATTERN = 1024
#: The room permissions of a grant (its claim fields) and the `Access` fields they set.
_PERMISSIONS = {
    "messages": "may_message",
    "offer_tools": "may_offer_tools",
    "call_tools": "may_call_tools",
}


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def match_pattern(pattern: str, value: str) -> bool:
    """Whether `value` (a room name or document path) matches `pattern`.

    ```py
    assert match_pattern("notes/*", "notes/2026/plan.md")
    assert not match_pattern("notes/*", "secrets/keys.md")
    assert match_pattern("draft-?.md", "draft-1.md")
    ```
    """
    return _compile(pattern).fullmatch(value) is not None


def _check_pattern(pattern: object, what: str) -> str:
    if not isinstance(pattern, str):
        raise ValueError(f"{what} pattern must be a string, not {type(pattern).__name__}")
    if not pattern:
        if what == "path":
            raise ValueError(
                "path pattern must not be empty: the room document (path '') is "
                "admitted by every grant for the room"
            )
        raise ValueError(f"{what} pattern must not be empty")
    if len(pattern) > _MAX_PATTERN:
        raise ValueError(f"{what} pattern is longer than {_MAX_PATTERN} characters")
    if pattern.startswith("/"):
        raise ValueError(f"{what} pattern {pattern!r} must not start with '/'")
    return pattern


@dataclass(frozen=True)
class Grant:
    """Access to one room (or room pattern) and the documents matching `paths`.

    ```py
    grant = Grant("team", paths=["notes/*"], read_only=True)
    assert grant.admits("team", "notes/plan.md")
    assert grant.admits("team", "")  # the room document
    assert not grant.admits("team", "budget.md")
    ```

    Raises:
        ValueError: a room or path pattern is empty, not a string, or starts with `/`.
    """

    room: str
    paths: tuple[str, ...] = ("*",)
    read_only: bool = False
    #: May post room messages (a read-only grant too, unless this is False).
    messages: bool = True
    #: May offer toolkits to the room.
    offer_tools: bool = True
    #: May call tools others offer in the room.
    call_tools: bool = True
    #: Admin of the room: may read its activity log (``GET /rooms/{room}/activity``).
    #: Carried in the claim as ``"admin": true``; it opens no document by itself.
    admin: bool = False

    def __post_init__(self) -> None:
        _check_pattern(self.room, "room")
        if isinstance(self.paths, str):
            raise ValueError("paths must be a list of patterns, not a single string")
        paths = tuple(_check_pattern(path, "path") for path in self.paths)
        object.__setattr__(self, "paths", paths)
        if not isinstance(self.read_only, bool):
            raise ValueError("read_only must be a boolean")
        if not isinstance(self.admin, bool):
            raise ValueError("admin must be a boolean")
        for permission in _PERMISSIONS:
            if not isinstance(getattr(self, permission), bool):
                raise ValueError(f"{permission} must be a boolean")

    @property
    def mode(self) -> GrantMode:
        """``"read-only"`` or ``"read-write"``."""
        return "read-only" if self.read_only else "read-write"

    def covers_room(self, room: str) -> bool:
        """Whether this grant is for `room` (so it admits the room document)."""
        return match_pattern(self.room, room)

    def admits(self, room: str, path: str) -> bool:
        """Whether this grant opens document `path` of `room` (``""``: the room document)."""
        if not self.covers_room(room):
            return False
        if path == "":
            return True
        return any(match_pattern(pattern, path) for pattern in self.paths)

    def to_claim(self) -> dict[str, Any]:
        """The JSON form carried in a token's ``grants`` claim."""
        claim: dict[str, Any] = {"room": self.room, "paths": list(self.paths), "mode": self.mode}
        if self.admin:
            claim["admin"] = True
        for permission in _PERMISSIONS:
            if not getattr(self, permission):
                claim[permission] = False  # only what is off: tokens stay short
        return claim

    @classmethod
    def from_claim(cls, data: object) -> Grant:
        """Parse one entry of a token's ``grants`` claim.

        Raises:
            ValueError: the entry is not ``{"room": str, "paths": [str], "mode": ...}``.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a grant must be an object, not {type(data).__name__}")
        unknown = set(data) - {"room", "paths", "mode", "admin", *_PERMISSIONS}
        if unknown:
            raise ValueError(f"unknown grant fields: {', '.join(sorted(map(str, unknown)))}")
        mode = data.get("mode", "read-write")
        if mode not in ("read-write", "read-only"):
            raise ValueError(f"grant mode must be 'read-write' or 'read-only', not {mode!r}")
        paths = data.get("paths", ["*"])
        if not isinstance(paths, list):
            raise ValueError("grant paths must be a list of patterns")
        admin = data.get("admin", False)
        if not isinstance(admin, bool):
            raise ValueError("grant admin must be true or false")
        permissions = {permission: data.get(permission, True) for permission in _PERMISSIONS}
        for permission, value in permissions.items():
            if not isinstance(value, bool):
                raise ValueError(f"grant {permission} must be true or false")
        return cls(
            room=data.get("room"),  # type: ignore[arg-type]
            paths=tuple(paths),
            read_only=mode == "read-only",
            admin=admin,
            **permissions,
        )


def resolve_mode(grants: Iterable[Grant], room: str, path: str) -> GrantMode | None:
    """The access `grants` give to `path` of `room`: the most generous, or None.

    ```py
    grants = [Grant("team", ["*"], read_only=True), Grant("team", ["notes/*"])]
    assert resolve_mode(grants, "team", "notes/a.md") == "read-write"
    assert resolve_mode(grants, "team", "budget.md") == "read-only"
    assert resolve_mode(grants, "other", "notes/a.md") is None
    ```
    """
    found: GrantMode | None = None
    for grant in grants:
        if grant.admits(room, path):
            if not grant.read_only:
                return "read-write"
            found = "read-only"
    return found


def resolve_permissions(grants: Iterable[Grant], room: str) -> dict[str, bool]:
    """What `grants` allow in `room` beyond documents, as `Access` fields: for each
    permission, whether one grant for the room allows it (the most generous wins).

    ```py
    grants = [Grant("team", read_only=True, messages=False), Grant("team", ["notes/*"])]
    assert resolve_permissions(grants, "team")["may_message"] is True
    assert resolve_permissions(grants[:1], "team")["may_message"] is False
    ```
    """
    covering = [grant for grant in grants if grant.covers_room(room)]
    return {
        field: any(getattr(grant, permission) for grant in covering)
        for permission, field in _PERMISSIONS.items()
    }


def is_admin(grants: Iterable[Grant], room: str) -> bool:
    """Whether one of `grants` makes its holder an admin of `room` (reads its activity)."""
    return any(grant.admin and grant.covers_room(room) for grant in grants)


def parse_grants(data: object) -> tuple[Grant, ...]:
    """Parse a token's ``grants`` claim (a list of grant objects)."""
    if data is None:
        return ()
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise ValueError("the grants claim must be a list")
    return tuple(Grant.from_claim(item) for item in data)
