"""The room document: participants, documents, toolkits, queues and messages, as shared types.

Layout of the room document (path ``""``, never stored; docs/room-document.md has each
entry's fields)::

    participants: Map   participant id -> {"name", "kind", "joinedAt", "attributes"}
    documents:    Map   document path -> {"size", "modified", "stored", "open"}
    toolkits:     Map   "offerer/toolkit" -> {"name", "description", "offeredBy", "tools"}
    queues:       Map   queue name -> {"length", "consumers", "inFlight"}
    streams:      Map   message id -> {"from", "to", "thread", "text", "time"}  (being written)
    messages:     Array [{"from", "to", "text" | "json", "time", "thread"?, "id"?}, ...]  (bounded)

The server owns the maps: a participant appears with their first connection to
any document of the room and disappears with their last; the other maps follow
what the server knows (`set_entry`, `remove_entry`). In a cluster, the other processes'
entries are held beside this process's own (`set_remote`, `drop_remote`) and the maps
show their union (`_union`). Clients may only append messages, signed with their own
participant id. A client update
is first checked on a scratch copy of the document (a mirror kept up to date, so
a check costs what the update changes, not what the room holds): one that deletes messages or
adds other shared types is refused and never touches the live document. One that
writes participants or appends messages it may not (a forgery, or the stale room
document a client kept across a server restart) is applied and repaired in the
same transaction, so nobody ever sees the forged state and the client's later
updates, which build on it, still apply.

Longer than 400 lines: writing the server maps, checking client updates against them and
repairing forgeries all read the same authoritative entries, so they stay in one class
(the rules that combine processes' entries are in `_union`, the scratch copy below).

```js
// In a browser, with the unmodified y-websocket provider:
const provider = new WebsocketProvider("ws://127.0.0.1:8765", "my room", roomDoc)
roomDoc.getMap("participants").toJSON()   // {"alice": {name: "Alice", kind: "person", ...}}
roomDoc.getArray("messages").push([{from: "alice", to: null, text: "hi", time: Date.now()}])
```
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from typing import Any

from pycrdt import Array, Doc, Map, TransactionEvent

from ._hooks import Access
from ._union import MISSING, MapUnion

__all__ = ["Presence", "check_message"]

#: Transaction origin of the server's own edits to the room document.
SERVER_ORIGIN = "meshroom-server"
#: The maps of the room document only the server writes.
SERVER_MAPS = ("participants", "documents", "toolkits", "queues", "streams")
#: Every shared type of the room document.
ROOM_ROOTS = (*SERVER_MAPS, "messages")
_MESSAGE_KEYS = {"from", "to", "text", "json", "time", "thread", "id"}
#: Longest thread or message id, in characters.
MAX_MESSAGE_ID = 128
#: Longest message text accepted, in characters (room messages are chat, not documents).
MAX_MESSAGE_TEXT = 64 * 1024
#: Largest client update to the room document, in bytes: room for the longest text message
#: (4 bytes a character) twice over. Checking an update builds Python values of the
#: messages it adds, up to 60 times its size for a `json` message of small objects (a
#: 1.9 MiB update: 116 MiB), so a larger update is refused before it is read.
MAX_ROOM_UPDATE = 512 * 1024


def _now_ms() -> int:
    return int(time.time() * 1000)


def check_message(message: Any, *, sender: str | None = None) -> str | None:
    """Return why `message` is not a well-formed room message, or None if it is."""
    if not isinstance(message, dict):
        return "a room message must be an object"
    extra = set(message) - _MESSAGE_KEYS
    if extra:
        return f"unknown room message fields: {sorted(extra)}"
    if not isinstance(message.get("from"), str):
        return "a room message needs 'from' (the sender's participant id)"
    if sender is not None and message["from"] != sender:
        return f"a room message from {sender!r} may not claim to be from {message['from']!r}"
    if message.get("to") is not None and not isinstance(message["to"], str):
        return "'to' must be a participant id or null (everyone)"
    for key in ("thread", "id"):
        value = message.get(key)
        if value is not None and (
            not isinstance(value, str) or not 0 < len(value) <= MAX_MESSAGE_ID
        ):
            return f"'{key}' must be a string of 1 to {MAX_MESSAGE_ID} characters, or absent"
    has_text = message.get("text") is not None
    has_json = message.get("json") is not None
    if has_text == has_json:
        return "a room message carries exactly one of 'text' or 'json'"
    if has_text and not isinstance(message["text"], str):
        return "'text' must be a string"
    if has_text and len(message["text"]) > MAX_MESSAGE_TEXT:
        return f"'text' is longer than {MAX_MESSAGE_TEXT} characters"
    if not isinstance(message.get("time"), (int, float)) or isinstance(message["time"], bool):
        return "'time' must be a number (milliseconds since the epoch)"
    return None


class Presence:
    """Maintains `participants` and `messages` in a room document."""

    def __init__(self, doc: Doc, *, max_messages: int) -> None:
        self.doc = doc
        self.max_messages = max_messages
        #: The server maps' shared types, made on first use: a room that nobody offers a
        #: tool or a queue in never pays for those maps' wrappers (about 1 KiB each).
        self._maps: dict[str, Map] = {}
        self.participants = self._map("participants")
        self.messages = doc.get("messages", type=Array)
        self._connections: dict[str, int] = {}
        #: Told ``(access, joined)`` when a participant appears or goes (activity).
        self.on_participant: Callable[[Access, bool], None] | None = None
        #: This process's entries and the other processes' (in a cluster), per map.
        self._union = MapUnion(SERVER_MAPS)
        #: The authoritative entries of each server map (what the shared maps must hold):
        #: the union of this process's and the other processes' entries.
        self._owned: dict[str, dict[str, Any]] = {name: {} for name in SERVER_MAPS}
        #: Counts changes of this process's own entries (the cluster republishes on one).
        self.version = 0
        #: Told (no arguments) after this process's own entries changed.
        self.on_local_change: Callable[[], None] | None = None
        #: A mirror of `doc` client updates are checked on first; None until needed
        #: (and after a refused update, which it holds but `doc` does not).
        self._scratch: _Scratch | None = None
        # Through a weak reference: the document must not keep its Presence alive.
        self._mirroring: Any = doc.observe(_weak_mirror(weakref.ref(self)))

    def close(self) -> None:
        """Stop mirroring the room document. An observer left on a pycrdt `Doc` keeps the
        doc alive (the callback refers to it from the native side), so every closed room
        would keep its room document for the life of the process."""
        if self._mirroring is not None:
            self.doc.unobserve(self._mirroring)
            self._mirroring = None

    def join(self, access: Access) -> None:
        """Count one more connection of this participant; publish them on the first."""
        count = self._connections.get(access.participant_id, 0)
        self._connections[access.participant_id] = count + 1
        if count == 0:
            entry = {
                "name": access.name or access.participant_id,
                "kind": access.kind,
                "joinedAt": _now_ms(),
                "attributes": dict(access.attributes),
            }
            if self._union.process is not None:
                entry["process"] = self._union.process
            self.set_entry("participants", access.participant_id, entry)
            if self.on_participant is not None:
                self.on_participant(access, True)

    def leave(self, access: Access) -> None:
        """Count one connection less; remove the participant with their last one."""
        count = self._connections.get(access.participant_id, 0) - 1
        if count > 0:
            self._connections[access.participant_id] = count
            return
        self._connections.pop(access.participant_id, None)
        self.remove_entry("participants", access.participant_id)
        if self.on_participant is not None:
            self.on_participant(access, False)

    @property
    def process(self) -> str | None:
        """This process's id in a cluster (None: not in one), named by its participants."""
        return self._union.process

    def set_process(self, process: str) -> None:
        """Join a cluster as `process`: this process's participants name it (``process``)."""
        self._union.process = process
        for key, entry in list(self._union.local["participants"].items()):
            if isinstance(entry, dict) and entry.get("process") != process:
                self.set_entry("participants", key, {**entry, "process": process})

    def set_entry(self, root: str, key: str, value: Any) -> None:
        """Write this process's `key` of the server map `root` (what clients may not change)."""
        local = self._union.local[root]
        if key in local and local[key] == value:
            return
        local[key] = value
        self._local_changed()
        self._refresh(root, (key,))

    def remove_entry(self, root: str, key: str) -> None:
        """Remove this process's `key` from the server map `root` (nothing if absent)."""
        if self._union.local[root].pop(key, MISSING) is not MISSING:
            self._local_changed()
        self._refresh(root, (key,))

    def set_remote(self, process: str, root: str, entries: dict[str, Any]) -> None:
        """Hold another process's entries of map `root` (all of them: the others go)."""
        self._refresh(root, self._union.set_remote(process, root, entries))

    def drop_remote(self, process: str) -> None:
        """Forget another process's entries (it left the room, or stopped answering)."""
        for root, keys in self._union.drop_remote(process).items():
            self._refresh(root, keys)

    def remote_processes(self) -> list[str]:
        """The other processes whose entries are held."""
        return self._union.processes()

    def entries(self, root: str) -> dict[str, Any]:
        """The entries of map `root` the room document shows, as plain data (a copy)."""
        return dict(self._owned[root])

    def local_entries(self, root: str) -> dict[str, Any]:
        """This process's own entries of map `root` (what a cluster publishes), a copy."""
        return dict(self._union.local[root])

    def _map(self, root: str) -> Map:
        shared = self._maps.get(root)
        if shared is None:
            shared = self._maps[root] = self.doc.get(root, type=Map)
        return shared

    def _local_changed(self) -> None:
        self.version += 1
        if self.on_local_change is not None:
            self.on_local_change()

    def _refresh(self, root: str, keys: Any) -> None:
        """Write the union's entries of `keys` into the shared map, in one transaction."""
        owned, shared = self._owned[root], self._map(root)
        changes: list[tuple[str, Any]] = []
        for key in keys:
            value = self._union.value(root, key)
            if value is MISSING:
                owned.pop(key, None)
                if key in shared:
                    changes.append((key, MISSING))
            elif key not in owned or owned[key] != value:
                owned[key] = value
                changes.append((key, value))
        if not changes:
            return
        with self.doc.transaction(origin=SERVER_ORIGIN):
            for key, value in changes:
                if value is MISSING:
                    del shared[key]
                else:
                    shared[key] = value

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Participants as plain data."""
        return self.participants.to_py() or {}

    def append(
        self,
        from_: str,
        *,
        text: str | None = None,
        json: Any = None,
        to: str | None = None,
        thread: str | None = None,
        id: str | None = None,
    ) -> dict[str, Any]:
        """Append a room message from the server side and trim to the bound.

        Raises:
            ValueError: the message is not well-formed (both or neither of text/json…).
        """
        message: dict[str, Any] = {"from": from_, "to": to, "time": _now_ms()}
        if thread is not None:
            message["thread"] = thread
        if id is not None:
            message["id"] = id
        if text is not None:
            message["text"] = text
        if json is not None:
            message["json"] = json
        problem = check_message(message)
        if problem is not None:
            raise ValueError(problem)
        with self.doc.transaction(origin=SERVER_ORIGIN):
            self.messages.append(message)
        self.trim()
        return message

    def add_messages(
        self, messages: list[dict[str, Any]], *, origin: Any, at_start: bool = False
    ) -> int:
        """Append messages posted elsewhere (another process of a cluster), as they are.

        Each keeps its own ``from`` and ``time``; `origin` is the transaction's, so the
        caller can tell these from local ones. `at_start` puts them before the messages
        already here (an older history, replayed when the room opens). A malformed one
        is skipped. Returns how many were added.
        """
        valid = [message for message in messages if check_message(message) is None]
        if valid:
            with self.doc.transaction(origin=origin):
                if at_start:
                    for index, message in enumerate(valid):
                        self.messages.insert(index, message)
                else:
                    self.messages.extend(valid)
            self.trim()
        return len(valid)

    def trim(self) -> None:
        """Drop the oldest messages beyond `max_messages`."""
        extra = len(self.messages) - self.max_messages
        if extra > 0:
            with self.doc.transaction(origin=SERVER_ORIGIN):
                del self.messages[0:extra]

    def check_client_update(self, update: bytes, sender: str) -> str | None:
        """Return what is wrong with a client's update to the room document, or None."""
        return self.classify_client_update(update, sender)[0]

    def classify_client_update(self, update: bytes, sender: str) -> tuple[str | None, bool]:
        """Check a client's update without applying it: ``(problem, repairable)``.

        ``(None, False)``: apply as is. ``(problem, True)``: apply with
        `apply_client_update`, which repairs it (participants written, messages
        not signed by `sender`). ``(problem, False)``: refuse (not a Yjs update,
        another shared type, messages deleted or changed). The live document is
        untouched either way.
        """
        verdict = self._check(update, sender)
        self._scratch = None  # holds an update the live document does not: rebuild it
        return verdict.problem, verdict.repairable

    def apply_client_update(
        self, update: bytes, sender: str, apply: Callable[[bool], None], *, may_post: bool = True
    ) -> str | None:
        """Check a client's update, then apply it if allowed; return its problem or None.

        `apply(repaired)` applies the update to the live document; `repaired` is
        True when the server changes it in the same transaction (the sender must
        then receive the relay too, to see the repair). A refused update never
        touches the live document. With `may_post` False (the sender's grants allow
        no messages), every message it appends is a forgery: repaired away.

        Raises:
            ValueError: the bytes are not a Yjs update (nothing changed).
        """
        verdict = self._check(update, sender, may_post=may_post)
        if verdict.problem is not None and not verdict.repairable:
            self._scratch = None
            if verdict.problem.startswith("not a Yjs update"):
                raise ValueError(verdict.problem)
            return verdict.problem
        try:
            if verdict.problem is None:
                apply(False)
            else:
                self._apply_repaired(apply, verdict.forged)
        except BaseException:
            self._scratch = None
            raise
        return verdict.problem

    def _check(self, update: bytes, sender: str, *, may_post: bool = True) -> _Verdict:
        """Apply `update` to the scratch copy and judge only what it changed.

        The cost follows the size of the update, not of the room document: the
        scratch copy mirrors the live one (see `_mirror`), and the changes are
        read from the scratch document's events instead of comparing contents.
        """
        if len(update) > MAX_ROOM_UPDATE:
            return _Verdict(
                f"an update of {len(update)} bytes exceeds the room document's {MAX_ROOM_UPDATE}",
                False,
            )
        scratch = self._scratch or self._build_scratch()
        before_roots = set(scratch.doc.keys())
        # Observed only while the update is checked: mirrored live updates make no events.
        events: list[tuple[str, Any]] = []
        subscriptions = [
            (shared, shared.observe_deep(_recorder(name, events)))
            for name, shared in (*scratch.maps.items(), ("messages", scratch.messages))
        ]
        try:
            scratch.doc.apply_update(update)
        except ValueError as error:
            return _Verdict(f"not a Yjs update: {error}", False)
        finally:
            for shared, subscription in subscriptions:
                shared.unobserve(subscription)
        if set(scratch.doc.keys()) != before_roots:
            return _Verdict(f"the room document only has {', '.join(ROOM_ROOTS)}", False)
        maps_changed: set[str] = set()
        added: list[tuple[int, Any]] = []
        for root, event in events:
            if root != "messages":
                maps_changed.add(root)
                continue
            if event.path:
                return _Verdict("room messages can only be appended", False)
            position = 0
            for change in event.delta:
                if "delete" in change:
                    return _Verdict("room messages can only be appended", False)
                if "retain" in change:
                    position += change["retain"]
                    continue
                for item in change["insert"]:
                    value = item.to_py() if hasattr(item, "to_py") else item  # a nested shared type
                    added.append((position, value))
                    position += 1
        forged = [
            index
            for index, message in added
            if not may_post or check_message(message, sender=sender) is not None
        ]
        for root in sorted(maps_changed):
            if (scratch.maps[root].to_py() or {}) != self._owned[root]:
                return _Verdict(f"{root} are maintained by the server", True, forged)
        if forged and not may_post:
            return _Verdict(f"{sender!r} may not post room messages", True, forged)
        if forged:
            problem = check_message(dict(added)[forged[0]], sender=sender)
            return _Verdict(problem, True, forged)
        return _Verdict(None, False)

    def _build_scratch(self) -> _Scratch:
        scratch = _Scratch()
        scratch.doc.apply_update(self.doc.get_update())
        self._scratch = scratch
        return scratch

    def _mirror(self, event: TransactionEvent) -> None:
        """Keep the scratch copy equal to the live document (runs on every live commit)."""
        scratch = self._scratch
        if scratch is None:
            return
        try:
            scratch.doc.apply_update(event.update)
        except Exception:  # pragma: no cover - defensive: rebuilt on the next check
            self._scratch = None

    def _apply_repaired(self, apply: Callable[[bool], None], forged: list[int]) -> None:
        """Apply a client update and undo its forgeries, in one transaction.

        Others receive one update whose net effect is only the valid part.
        `forged` are the indexes of the messages to drop, found by `_check` on
        the scratch copy, which equals the live document before the update.
        """
        with self.doc.transaction():
            apply(True)
            for root in SERVER_MAPS:
                shared, owned = self._map(root), self._owned[root]
                current = shared.to_py() or {}
                for key in current:
                    if key not in owned:
                        del shared[key]
                for key, entry in owned.items():
                    if current.get(key) != entry:
                        shared[key] = entry
            for index in reversed(forged):
                del self.messages[index]


def _weak_mirror(presence: weakref.ref[Presence]) -> Callable[[TransactionEvent], None]:
    def mirror(event: TransactionEvent) -> None:
        target = presence()
        if target is not None:
            target._mirror(event)

    return mirror


class _Verdict:
    """What `Presence._check` found in one client update."""

    __slots__ = ("forged", "problem", "repairable")

    def __init__(self, problem: str | None, repairable: bool, forged: list[int] | None = None):
        self.problem = problem
        self.repairable = repairable
        #: Indexes (after the update) of the added messages the sender may not post.
        self.forged = forged or []


def _recorder(root: str, events: list[tuple[str, Any]]) -> Callable[[list[Any]], None]:
    def record(changes: list[Any]) -> None:
        events.extend((root, change) for change in changes)

    return record


class _Scratch:
    """A copy of the room document, kept equal to the live one by `Presence._mirror`."""

    __slots__ = ("doc", "maps", "messages")

    def __init__(self) -> None:
        self.doc = Doc()
        self.maps = {name: self.doc.get(name, type=Map) for name in SERVER_MAPS}
        self.messages = self.doc.get("messages", type=Array)
