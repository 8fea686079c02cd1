"""One room across processes: participants, toolkits, documents and messages shared.

Every process keeps its own room document (path ``""``). For each room open here,
this process publishes its *own* view (its connections' participants, the toolkits
offered on them, the documents open here and who has them open) into the room's hash,
``{prefix}:room:{room}``, field = process id, value ``"VERSION TIME_MS JSON"``: on
every change (and then says so on ``{prefix}:rooms``, so the others read it at once)
and every `heartbeat` seconds. It reads the other processes' fields and holds them in
the room document as remote entries (`Presence.set_remote`, `RoomCalls.set_remote_offers`),
which show as one room. A field whose time stopped moving for `timeout` seconds (by
this process's own clock, so clocks may differ) belongs to a dead process: its
participants, toolkits and open documents leave the view and the field is deleted,
and calls pending on its toolkits end with ``offerer-left``. A process that stops
cleanly deletes its fields first, so the others drop it at once.

Messages travel in a stream per room (`_room_messages`), tool calls on a channel per
process (`_room_calls`). Work queues stay per process: an item lives in the memory of
the process it was sent to.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from .._retry import Backoff
from ._room_calls import CallLink, RoomCallProxies, forwarded, refuse_call
from ._room_messages import RoomMessages
from ._room_outbox import RoomOutbox
from ._streams import calls_channel, room_messages_key, room_views_key, views_channel

if TYPE_CHECKING:
    from ..server._room import Room

__all__ = ["RoomSharing"]

#: The server maps a process publishes (its queues stay its own).
SHARED_MAPS = ("participants", "toolkits", "documents")
#: Pauses after failed Redis round trips of the views or the calls channel.
RETRY = Backoff(initial=0.5, maximum=5.0, jitter=0.0)

log = logging.getLogger("meshroom.cluster")


@dataclass
class _Seen:
    """What this process last read of another process's field."""

    version: str
    stamp: str
    #: When (anyio's clock) the field's time last moved.
    moved_at: float


@dataclass(eq=False)
class _Shared:
    """A room open here, as this process shares it."""

    room: Room
    views_key: str
    messages_key: str
    proxies: RoomCallProxies
    published: int = -1
    #: The JSON of this process's view at version `published` (re-sent on each beat).
    body: str = ""
    replayed: bool = False
    seen: dict[str, _Seen] = field(default_factory=dict)


class RoomSharing:
    """Shares every room open in this process with the other processes (see above)."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str,
        process: str,
        heartbeat: float,
        timeout: float,
        block: float,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self.process = process
        self.heartbeat = heartbeat
        self.timeout = timeout
        self.outbox = RoomOutbox(client)
        self.messages = RoomMessages(client, self.outbox, process=process, block=block)
        self.link = CallLink(self.outbox, prefix=prefix, process=process)
        self.server: Any = None
        self._rooms: dict[str, _Shared] = {}
        self._dirty: set[str] = set()
        #: Rooms that closed here, whose fields `_publish` deletes: (name, views key).
        self._closed: list[tuple[str, str]] = []
        self._wake = anyio.Event()

    # -- what the extension tells it ---------------------------------------------------------

    def track(self, name: str) -> None:
        """Share room `name` if it is open here and not shared yet (any task, any callback)."""
        room = self.server.room(name) if self.server is not None else None
        shared = self._rooms.get(name)
        if room is None or room.closed or (shared is not None and shared.room is room):
            return
        if shared is not None:
            self._untrack(name, shared)
        shared = _Shared(
            room,
            room_views_key(self._prefix, name),
            room_messages_key(self._prefix, name),
            RoomCallProxies(room, self.link),
        )
        self._rooms[name] = shared
        room.presence.set_process(self.process)
        room.presence.on_local_change = self.poke
        self.messages.follow(room, shared.messages_key)
        self._dirty.add(name)
        self.poke()

    def poke(self) -> None:
        """Something changed: publish and read without waiting for the heartbeat."""
        self._wake.set()

    # -- the tasks ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: the outbox, the message reader, the channels and the views."""
        async with anyio.create_task_group() as group:
            group.start_soon(self.outbox.run)
            group.start_soon(self.messages.run)
            group.start_soon(self._listen)
            await self._keep_views()

    async def close(self) -> None:
        """Delete this process's fields and say so, so the others drop it at once."""
        rooms, self._rooms = self._rooms, {}
        with contextlib.suppress(Exception):
            async with self._client.pipeline(transaction=False) as pipe:
                for name, shared in rooms.items():
                    self._withdraw(pipe, name, shared.views_key)
                await pipe.execute()
        for shared in rooms.values():
            self.messages.unfollow(shared.messages_key)

    async def _keep_views(self) -> None:
        failures = 0
        next_beat = 0.0
        while True:
            now = anyio.current_time()
            beat = now >= next_beat
            if beat:
                next_beat = now + self.heartbeat
            try:
                self._sync_rooms()
                await self._replay()
                await self._publish(beat)
                await self._read(beat)
                failures = 0
            except Exception:
                failures += 1
                delay = RETRY.delay(failures)
                log.exception("cluster: sharing rooms failed; retrying in %.1f s", delay)
                await anyio.sleep(delay)
                continue
            with anyio.move_on_after(max(0.0, next_beat - anyio.current_time())):
                await self._wake.wait()
            self._wake = anyio.Event()

    def _sync_rooms(self) -> None:
        """Share rooms that opened here (embedded peers open rooms without a connection);
        stop sharing those that closed."""
        if self.server is None:
            return
        for name in self.server.room_names():
            self.track(name)
        for name, shared in list(self._rooms.items()):
            if shared.room.closed or self.server.room(name) is not shared.room:
                self._untrack(name, shared)

    def _untrack(self, name: str, shared: _Shared) -> None:
        del self._rooms[name]
        self.messages.unfollow(shared.messages_key)
        self._dirty.discard(name)
        self._closed.append((name, shared.views_key))  # deleted by the next `_publish`

    async def _replay(self) -> None:
        for shared in list(self._rooms.values()):
            if not shared.replayed:
                await self.messages.replay(shared.messages_key)
                shared.replayed = True

    async def _publish(self, beat: bool) -> None:
        """Write this process's view of each room that changed (of every room, on a beat)."""
        stamp = str(int(time.time() * 1000))
        changed: list[str] = []
        async with self._client.pipeline(transaction=False) as pipe:
            closed, self._closed = self._closed, []
            for name, key in closed:
                self._withdraw(pipe, name, key)
            for name, shared in self._rooms.items():
                version = shared.room.presence.version
                if version == shared.published and not beat:
                    continue
                if version != shared.published:
                    changed.append(name)
                    presence = shared.room.presence
                    view = {root: presence.local_entries(root) for root in SHARED_MAPS}
                    shared.body = json.dumps(view, separators=(",", ":"))
                value = f"{version} {stamp} {shared.body}"
                pipe.hset(shared.views_key, self.process, value)
                pipe.expire(shared.views_key, max(60, int(self.timeout * 12)))
                shared.published = version
            for name in changed:
                self._say_changed(pipe, name)
            if closed or changed or beat:
                await pipe.execute()

    def _withdraw(self, pipe: Any, name: str, key: str) -> None:
        """Queue on `pipe` the deletion of this process's view of room `name`, and say so."""
        pipe.hdel(key, self.process)
        self._say_changed(pipe, name)

    def _say_changed(self, pipe: Any, name: str) -> None:
        """Queue on `pipe` the word that this process's view of `name` changed (`_view_changed`)."""
        pipe.publish(views_channel(self._prefix), f"{self.process}\n{name}")

    async def _read(self, beat: bool) -> None:
        """Read the other processes' views of the dirty rooms (of every room, on a beat)."""
        names = list(self._rooms) if beat else [n for n in self._dirty if n in self._rooms]
        self._dirty.clear()
        if not names:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self._rooms[name].views_key)
            answers = await pipe.execute()
        stale: list[tuple[str, str]] = []
        for name, fields in zip(names, answers, strict=True):
            shared = self._rooms.get(name)
            if shared is not None:
                stale.extend((shared.views_key, p) for p in self._apply(shared, fields, beat))
        if stale:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, process in stale:
                    pipe.hdel(key, process)
                await pipe.execute()

    def _apply(self, shared: _Shared, fields: dict[bytes, bytes], beat: bool) -> list[str]:
        """Hold each live process's view; drop the dead and the gone. Returns the dead."""
        now = anyio.current_time()
        wall = time.time() * 1000
        present: set[str] = set()
        dead: list[str] = []
        for raw_process, raw_value in fields.items():
            process = raw_process.decode()
            if process == self.process:
                continue
            version, _, rest = raw_value.decode().partition(" ")
            stamp, _, body = rest.partition(" ")
            seen = shared.seen.get(process)
            if seen is None:
                if not stamp.isdigit() or wall - int(stamp) > self.timeout * 1000:
                    dead.append(process)  # left behind by a process long gone
                    continue
                seen = shared.seen[process] = _Seen("", stamp, now)
            elif stamp != seen.stamp:
                seen.stamp, seen.moved_at = stamp, now
            elif beat and now - seen.moved_at > self.timeout:
                dead.append(process)
                continue
            present.add(process)
            if version != seen.version:
                try:
                    view = json.loads(body)
                except ValueError:
                    log.warning("cluster: skipping an unreadable view of %s", process)
                    continue
                seen.version = version
                self._hold(shared, process, view)
        for process in [p for p in shared.seen if p not in present]:
            self._drop(shared, process)
        return dead

    def _hold(self, shared: _Shared, process: str, view: dict[str, Any]) -> None:
        room = shared.room
        entries = {root: view.get(root) for root in SHARED_MAPS}
        entries = {
            root: value if isinstance(value, dict) else {} for root, value in entries.items()
        }
        room.presence.set_remote(process, "participants", entries["participants"])
        room.presence.set_remote(process, "documents", entries["documents"])
        shared.proxies.hold_offers(process, entries["toolkits"])
        log.debug("cluster: room %r holds the view of %s", room.name, process)

    def _drop(self, shared: _Shared, process: str) -> None:
        """Forget `process` in this room: it stopped, or stopped answering."""
        shared.seen.pop(process, None)
        room = shared.room
        shared.proxies.drop(process)
        room.presence.drop_remote(process)
        log.info("cluster: room %r no longer shows process %s", room.name, process)

    # -- the channels ------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Until cancelled: views that changed elsewhere, and calls forwarded to us."""
        failures = 0
        views = views_channel(self._prefix).encode()
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(views, calls_channel(self._prefix, self.process))
                failures = 0
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    if message["channel"] == views:
                        self._view_changed(message["data"])
                    else:
                        self._arrived(message["data"])
            except Exception:
                failures += 1
                delay = RETRY.delay(failures)
                log.exception("cluster: listening for rooms failed; retrying in %.1f s", delay)
                await anyio.sleep(delay)
            finally:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _view_changed(self, data: bytes) -> None:
        process, _, name = data.decode().partition("\n")
        if process != self.process and name in self._rooms:
            self._dirty.add(name)
            self.poke()

    def _arrived(self, data: bytes) -> None:
        """A call, a cancel or a result forwarded from another process."""
        found = forwarded(data)
        if found is None:
            return
        kind, name, key, sender, message = found
        shared = self._rooms.get(name)
        if shared is not None:
            shared.proxies.arrived(kind, sender, key, message)
        else:
            refuse_call(self.link, sender, message)
