"""`Version`: what is known of one saved state of a document, and how it is stored.

The state itself (a Yjs v1 update holding the whole document) is stored apart from this
metadata, so listing a document's versions never reads megabytes of state. The metadata
is one small JSON object; unknown keys are kept, so a later release may add some.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Literal

__all__ = ["AUTOMATIC_REASONS", "Reason", "Version", "new_version_id", "state_digest"]

#: Why a version was saved: asked by someone (``named``), or automatically: at the end of a
#: room session (``session-end``), before an agent's first edit in a run (``agent-run``),
#: after some minutes of editing (``interval``), just before a restore (``before-restore``).
Reason = Literal["named", "session-end", "agent-run", "interval", "before-restore"]
AUTOMATIC_REASONS = frozenset({"session-end", "agent-run", "interval", "before-restore"})


def new_version_id(now: float | None = None) -> str:
    """A new version id: its UTC time to the millisecond, then random hex.

    Ids sort by time (``20260105T101500123Z-3f9a1c``), as activity sessions do.
    """
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    return f"{moment:%Y%m%dT%H%M%S}{moment.microsecond // 1000:03d}Z-{secrets.token_hex(3)}"


def state_digest(state: bytes) -> str:
    """A digest of a state, so an automatic version of an unchanged document is skipped."""
    return hashlib.sha256(state).hexdigest()


@dataclass(frozen=True)
class Version:
    """One saved state of one document."""

    id: str
    room: str
    path: str
    #: What people call it; automatic versions get one that says why they exist.
    name: str
    #: Unix time it was saved.
    time: float
    reason: Reason
    #: Who asked for it (a participant's id or name), or who caused it (the agent); None
    #: for the server's own versions (a session's end, an interval).
    author: str | None = None
    #: Bytes of its state.
    bytes: int = 0
    #: sha256 of its state.
    digest: str = ""
    #: For ``before-restore``: the version being restored; for ``agent-run``: the agent.
    detail: str | None = None

    @property
    def automatic(self) -> bool:
        """Whether the server saved it by itself (retention may thin those out)."""
        return self.reason in AUTOMATIC_REASONS

    def to_json(self) -> dict[str, Any]:
        """The version as JSON (what the HTTP endpoints and ``--json`` print)."""
        out = asdict(self)
        out["automatic"] = self.automatic
        return out

    def encode(self) -> bytes:
        """The metadata as stored (UTF-8 JSON, without room and path: the place says them)."""
        out = asdict(self)
        del out["room"], out["path"], out["id"]
        return json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def decode(cls, room: str, path: str, version_id: str, data: bytes) -> Version:
        """Read stored metadata back.

        Raises:
            ValueError: it is not a version's metadata.
        """
        fields = json.loads(data.decode())
        if not isinstance(fields, dict):
            raise ValueError("version metadata is not a JSON object")
        return cls(
            id=version_id,
            room=room,
            path=path,
            name=str(fields.get("name", "")),
            time=float(fields.get("time", 0.0)),
            reason=fields.get("reason", "named"),
            author=fields.get("author"),
            bytes=int(fields.get("bytes", 0)),
            digest=str(fields.get("digest", "")),
            detail=fields.get("detail"),
        )
