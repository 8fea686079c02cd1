"""Revoked tokens: by token id (``jti``) or by participant (``sub``, up to an instant).

A token's ``exp`` bounds how long a leaked token works; a revocation ends it now.
Two kinds of entries:

- a token id: that one token is refused, whenever it was issued;
- a participant and an instant: every token of that participant issued at or
  before the instant (its ``iat``) is refused, so a token issued afterwards
  works again. A token without ``iat`` cannot prove it is newer, and is refused.

The list lives in memory (`RevocationList.revoke`) and, optionally, in a JSON
file that `meshroom token revoke` writes and the server polls::

    {"version": 1, "tokens": ["5f0c…"], "participants": {"ann": 1767225600.25}}

A file that cannot be read or parsed never takes effect: the last good list
stays (and the problem is logged once per bad version of the file), so a
half-edited file can never re-admit revoked tokens by emptying the list.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "RevocationList",
    "RevocationListError",
    "Revocations",
    "read_revocations",
    "revoke_in_file",
]

logger = logging.getLogger("meshroom.auth")

#: Longest revocation file read, in bytes (default 16 MiB: about 400,000 token ids).
MAX_FILE_BYTES = 16 * 1024 * 1024
_VERSION = 1


class RevocationListError(ValueError):
    """A revocation file that cannot be read or is not a revocation list."""


@dataclass(frozen=True)
class Revocations:
    """One version of a revocation list: revoked token ids, participants → revoked-at."""

    tokens: frozenset[str] = frozenset()
    participants: Mapping[str, float] = field(default_factory=dict)

    def revokes(self, token_id: str | None, participant: str, issued_at: float | None) -> bool:
        """Whether a token with this ``jti``, ``sub`` and ``iat`` is revoked."""
        if token_id is not None and token_id in self.tokens:
            return True
        revoked_at = self.participants.get(participant)
        return revoked_at is not None and (issued_at is None or issued_at <= revoked_at)

    def merged(self, other: Revocations) -> Revocations:
        """Both lists together (a participant revoked twice: the later instant)."""
        participants = dict(self.participants)
        for participant, revoked_at in other.participants.items():
            participants[participant] = max(revoked_at, participants.get(participant, revoked_at))
        return Revocations(self.tokens | other.tokens, participants)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _VERSION,
            "tokens": sorted(self.tokens),
            "participants": dict(sorted(self.participants.items())),
        }

    @classmethod
    def from_json(cls, data: object) -> Revocations:
        """Parse the file's JSON.

        Raises:
            RevocationListError: not ``{"tokens": [str], "participants": {str: number}}``.
        """
        if not isinstance(data, dict):
            raise RevocationListError("a revocation list must be a JSON object")
        unknown = set(data) - {"version", "tokens", "participants"}
        if unknown:
            raise RevocationListError(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")
        if data.get("version", _VERSION) != _VERSION:
            raise RevocationListError(f"unknown version {data.get('version')!r}")
        tokens = data.get("tokens", [])
        if not isinstance(tokens, list) or not all(
            isinstance(token, str) and token for token in tokens
        ):
            raise RevocationListError("'tokens' must be a list of non-empty token ids")
        participants = data.get("participants", {})
        if not isinstance(participants, dict):
            raise RevocationListError("'participants' must map participant ids to times")
        for participant, revoked_at in participants.items():
            if (
                not participant
                or isinstance(revoked_at, bool)
                or not isinstance(revoked_at, (int, float))
                or not math.isfinite(revoked_at)
            ):
                raise RevocationListError(
                    f"participant {str(participant)[:40]!r} must map to a Unix time"
                )
        return cls(frozenset(tokens), {key: float(value) for key, value in participants.items()})


def read_revocations(path: str | os.PathLike[str]) -> Revocations:
    """The revocation list in `path`; a file that does not exist yet is an empty list.

    Raises:
        RevocationListError: unreadable, too large, or not a revocation list.
    """
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return Revocations()
    except OSError as error:
        raise RevocationListError(f"cannot read {os.fspath(path)}: {error.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise RevocationListError(f"{os.fspath(path)} is larger than {MAX_FILE_BYTES} bytes")
    if not data.strip():
        return Revocations()
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise RevocationListError(f"{os.fspath(path)} is not JSON: {error}") from None
    try:
        return Revocations.from_json(parsed)
    except RevocationListError as error:
        raise RevocationListError(f"{os.fspath(path)}: {error}") from None


def revoke_in_file(
    path: str | os.PathLike[str],
    *,
    tokens: Iterable[str] = (),
    participants: Iterable[str] = (),
    now: float | None = None,
) -> Revocations:
    """Add revocations to the file at `path` (created if missing); return the new list.

    The file is replaced atomically (a new file renamed over the old one), so a
    server polling it reads either the old list or the new one, never half of it.

    Raises:
        RevocationListError: the existing file is unreadable or malformed (it is left as is).
        OSError: the directory cannot be written.
    """
    revoked_at = time.time() if now is None else float(now)
    current = read_revocations(path)
    added = Revocations(frozenset(tokens), dict.fromkeys(participants, revoked_at))
    updated = current.merged(added)
    target = Path(path)
    text = json.dumps(updated.to_json(), indent=1) + "\n"
    handle, temporary = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if target.exists():
            os.chmod(temporary, target.stat().st_mode & 0o777)
        os.replace(temporary, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
    return updated


def _signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is replaced or edited: inode, size, modification time."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return (status.st_ino, status.st_size, status.st_mtime_ns)


class RevocationList:
    """The revocations a server enforces: what `revoke` added plus the file's, if any.

    ```py
    revocations = RevocationList("revoked.json")    # read now: a bad file raises
    revocations.revoke(participant="ann")           # in memory, from now on
    assert revocations.revokes(None, "ann", issued_at=time.time() - 60)
    ```

    Args:
        path: a JSON revocation file (see the module docs), re-read by `reload` when it
            changes; None for an in-memory list only.

    Raises:
        RevocationListError: the file exists but cannot be read or parsed.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._added = Revocations()
        self._from_file = Revocations()
        self._signature: tuple[int, int, int] | None = None
        self._bad_signature: tuple[int, int, int] | None = None
        if self.path is not None:
            self._signature = _signature(self.path)
            self._from_file = read_revocations(self.path)
        self._current = self._from_file

    @property
    def current(self) -> Revocations:
        """Everything revoked now (the file's last good list and what `revoke` added)."""
        return self._current

    def revokes(self, token_id: str | None, participant: str, issued_at: float | None) -> bool:
        """Whether a token with this ``jti``, ``sub`` and ``iat`` is revoked."""
        return self._current.revokes(token_id, participant, issued_at)

    def revoke(
        self, *, jti: str | None = None, participant: str | None = None, now: float | None = None
    ) -> None:
        """Revoke one token (by `jti`) and/or a participant's tokens issued up to `now`.

        Held in memory (not written to the file): it lasts as long as this process.

        Raises:
            ValueError: neither `jti` nor `participant` given, or one is empty.
        """
        if jti is None and participant is None:
            raise ValueError("give jti= or participant= (or both)")
        if jti is not None and (not isinstance(jti, str) or not jti):
            raise ValueError("jti must be a non-empty string")
        if participant is not None and (not isinstance(participant, str) or not participant):
            raise ValueError("participant must be a non-empty string")
        revoked_at = time.time() if now is None else float(now)
        added = Revocations(
            frozenset([jti] if jti else []),
            {participant: revoked_at} if participant else {},
        )
        self._added = self._added.merged(added)
        self._current = self._from_file.merged(self._added)

    def reload(self) -> bool:
        """Re-read the file if it changed; True if the list changed.

        A file that cannot be read or parsed, or that disappeared, keeps the last
        good list and is logged once (until the file changes again); it never raises.
        """
        if self.path is None:
            return False
        signature = _signature(self.path)
        if signature == self._signature or signature == self._bad_signature:
            return False
        try:
            if signature is None:
                raise RevocationListError(f"{self.path} disappeared")
            loaded = read_revocations(self.path)
        except RevocationListError as error:
            self._bad_signature = signature
            logger.warning("revocation list kept as it was: %s", error)
            return False
        self._signature, self._bad_signature = signature, None
        if loaded == self._from_file:
            return False
        self._from_file = loaded
        self._current = self._from_file.merged(self._added)
        logger.info(
            "revocation list reloaded: %d tokens, %d participants",
            len(loaded.tokens),
            len(loaded.participants),
        )
        return True
