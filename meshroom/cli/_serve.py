"""`meshroom serve`: run a room server on uvicorn with meshroom's own WebSocket protocol.

Transport choice, measured with ``benchmarks/transports.py`` (fan-out of small
updates to y-websocket clients, the same `Server` on each): uvicorn with
`uvicorn_websocket` (meshroom's protocol: frames go straight to the session from
the socket's callbacks, writes leave once per read handled and every 2 ms of a long
one, no task per admitted connection) against uvicorn's `websockets-sansio`, legacy
`websockets` and `wsproto` implementations, hypercorn and a plain `websockets`
server: against `websockets-sansio` in the same rounds it has more burst
throughput (1.2x), a lower burst p99 (0.55x) and half the CPU at a steady rate,
with the lowest steady latency of all. Plain
HTTP (`/healthz`, `--static`, `/dev/token`) is still the ASGI app's.
permessage-deflate is never offered: compression costs throughput and tail
latency for the tiny messages Yjs sends, and the Node server does not compress
either. A socket that cannot take more (its buffer is full) holds the session's
bounded queue back, which is how a slow reader is detected.

The command is assembled from `ServeConfig` so that options stay easy to add:
a new option fills a field (an extension, a route, a mount) and `build_app`
does the rest.

Longer than 400 lines: the command's options, each with its help text, stay beside
the `ServeConfig` fields they fill; the parts that stand alone are modules of their
own (`_preflight` checks, `_observe` activity and metrics, `_logformat`, `_dev`).
"""

from __future__ import annotations

import logging
import logging.config
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ..server._hooks import Extension
from ..server._limits import Limits
from ..server._server import Server
from . import app
from ._logformat import TEXT_FORMAT, logging_config
from ._observe import activity_extension, metrics_extension, observe_routes, serve_metrics_port
from ._preflight import check_listen, check_redis_option, check_storage_option

if TYPE_CHECKING:
    from ..auth import RevocationList

__all__ = ["ServeConfig", "build_app", "build_server", "serve"]

log = logging.getLogger("meshroom.server")

_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass
class ServeConfig:
    """Everything `meshroom serve` needs; options fill it, `build_app` reads it."""

    host: str = "127.0.0.1"
    port: int = 8765
    storage: str | None = None
    #: Seconds of quiet before a document snapshot, and longest wait under constant editing.
    storage_debounce: float = 1.0
    storage_max_delay: float = 10.0
    grace_period: float = 5.0
    max_message_size: int = Limits.max_message_size
    #: Bytes queued for one slow client before it is closed (`Limits.send_queue_bytes`).
    send_queue_bytes: int = Limits.send_queue_bytes
    #: Bytes of one document held while storage cannot write (`Limits.unwritten_bytes`).
    unwritten_bytes: int = Limits.unwritten_bytes
    #: fsync log appends and snapshots on a local folder (an edit survives a power cut).
    fsync: bool = True
    #: Local write-ahead journal for a remote store (default: one per storage URL under
    #: the user's state folder); a local folder needs none: its log is on the disk.
    journal: str | None = None
    #: Seconds between keepalive checks; a frozen peer is dropped within three.
    ping_interval: float = 3.0
    log_level: str = "info"
    #: Extensions besides storage (auth, metrics…), any priority.
    extensions: list[Extension] = field(default_factory=list)
    #: Extra Starlette routes / mounts served next to the websocket route.
    routes: list[Any] = field(default_factory=list)
    #: Redis URL shared by the processes of a cluster (`meshroom.cluster`).
    redis: str | None = None
    #: Seconds a cluster's writer lease on a document lasts unrenewed (dead writer takeover).
    writer_lease: float = 10.0
    #: Log each room session's activity through the storage provider (`meshroom.activity`).
    activity: bool = True
    #: Days a session's activity log is kept (None or 0: forever).
    activity_retention_days: float | None = 30.0
    #: Also log tool-call arguments and short results (they may quote documents).
    activity_tool_details: bool = False
    #: Keep versions of documents through the storage provider (`meshroom.versions`).
    versions: bool = True
    #: Minutes of editing between automatic versions (None or 0: none).
    version_interval_minutes: float | None = 10.0
    #: How automatic versions are thinned: "ALL,HOURLY,DAILY" days (None: 1,7,90).
    version_retention: str | None = None
    #: Serve Prometheus metrics at /metrics on the server's port (`meshroom.metrics`).
    metrics: bool = False
    #: Serve the metrics on this port instead (implies `metrics`).
    metrics_port: int | None = None
    #: The server's log lines: "text", or "json" (one object per line).
    log_format: str = "text"


def _storage_extension(url: str, config: ServeConfig) -> Extension | None:
    try:
        from ..storage import FsspecStorage, StorageExtension
    except ImportError:
        log.warning("meshroom.storage is not available: documents are kept in memory only")
        return None
    from ..storage import LocalJournal, storage_url

    target = storage_url(url)
    journal = None
    if config.journal or _is_remote(target):
        folder = config.journal or _default_journal(target)
        journal = LocalJournal(folder, fsync=config.fsync)
        log.info("edits to %s are journaled in %s before they are relayed", target, folder)
    return StorageExtension(
        FsspecStorage(target, fsync=config.fsync),
        debounce=config.storage_debounce,
        max_delay=config.storage_max_delay,
        journal=journal,
    )


def _is_remote(url: str) -> bool:
    """Whether writes to `url` leave this machine (an object store, a network filesystem)."""
    scheme = url.split("://", 1)[0] if "://" in url else "file"
    return scheme not in ("file", "local", "memory")


def _default_journal(url: str) -> str:
    """The journal folder of a storage URL: the same at every start, apart per URL."""
    import hashlib

    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return str(state / "meshroom" / "journal" / hashlib.sha256(url.encode()).hexdigest()[:16])


def build_server(config: ServeConfig) -> Server:
    """The `Server` described by `config` (storage first, then the other extensions)."""
    extensions = list(config.extensions)
    storage_target = config.storage
    if not storage_target and not config.redis:
        # Documents outlive their rooms (a reload finds them) until the process ends.
        storage_target = f"memory://meshroom-{os.getpid()}"
        log.warning(
            "no --storage given: documents are kept in memory until the server stops "
            "(pass --storage DIR to keep them)"
        )
    elif not storage_target:
        log.warning("no --storage given: this process stores nothing; another one must")
    storage = _storage_extension(storage_target, config) if storage_target else None
    if config.redis:
        from ..cluster import RedisExtension

        # The cluster chooses which process writes each document: storage goes through it.
        extensions.append(RedisExtension(config.redis, storage=storage, lease=config.writer_lease))
    elif storage is not None:
        extensions.append(storage)
    if config.activity and storage is not None:
        activity = activity_extension(
            getattr(storage, "provider", None),
            retention_days=config.activity_retention_days,
            tool_details=config.activity_tool_details,
        )
        if activity is not None:
            extensions.append(activity)
    if config.versions and storage is not None:
        from ._serve_versions import versions_extension

        versions = versions_extension(
            getattr(storage, "provider", None),
            interval_minutes=config.version_interval_minutes,
            retention=config.version_retention,
        )
        if versions is not None:
            extensions.append(versions)
    if config.metrics or config.metrics_port:
        extensions.append(metrics_extension())
    limits = Limits(
        max_message_size=config.max_message_size,
        send_queue_bytes=config.send_queue_bytes,
        unwritten_bytes=config.unwritten_bytes,
    )
    return Server(extensions=extensions, grace_period=config.grace_period, limits=limits)


def build_app(config: ServeConfig) -> Any:
    """The ASGI app for `config`: the server's app plus any extra routes."""
    from ..transport._asgi import create_app

    server = build_server(config)
    return create_app(server, extra_routes=_routes(server, config))


def _routes(server: Server, config: ServeConfig) -> list[Any]:
    """The activity and metrics routes, then the configured ones (a static mount at / last)."""
    from ._serve_versions import version_routes_of

    metrics_here = config.metrics and not config.metrics_port
    observed = observe_routes(server, metrics_here=metrics_here)
    return [*observed, *version_routes_of(server), *config.routes]


def run(config: ServeConfig) -> None:
    """Serve `config` until SIGINT/SIGTERM; shutdown stores every open room."""
    import uvicorn

    from ..transport._asgi import create_app
    from ..transport._uvicorn import uvicorn_websocket

    options: dict[str, Any] = {}
    if configure_logging(config.log_level, config.log_format):
        options["log_config"] = logging_config(config.log_level, config.log_format)
    server = build_server(config)
    if config.metrics_port:
        serve_metrics_port(server, config.host, config.metrics_port)
    uvicorn.run(
        create_app(server, extra_routes=_routes(server, config)),
        host=config.host,
        port=config.port,
        ws=uvicorn_websocket(server, ping_interval=config.ping_interval),
        log_level=config.log_level,
        lifespan="on",
        timeout_graceful_shutdown=10,
        **options,
    )


def configure_logging(level: str, log_format: str) -> bool:
    """Set up the log lines (again, harmlessly); True when uvicorn must use the same config."""
    if log_format == "json":
        logging.config.dictConfig(logging_config(level, "json"))
        return True
    logging.basicConfig(level=level.upper(), format=TEXT_FORMAT)
    return False


def _revocation_list(path: Path | None) -> RevocationList | None:
    """The `RevocationList` of `--revocations`, read now: a bad file stops the server."""
    if path is None:
        return None
    from ..auth import RevocationList, RevocationListError

    try:
        return RevocationList(path)
    except RevocationListError as error:
        raise typer.BadParameter(str(error), param_hint="--revocations") from None


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="Port to listen on."),
    storage: str | None = typer.Option(
        None,
        "--storage",
        help="Where documents are stored: a folder or any fsspec URL "
        "(memory://, s3://bucket/prefix). Default: memory only.",
    ),
    storage_debounce: float = typer.Option(
        1.0, "--storage-debounce", min=0, help="Seconds of quiet before a document is snapshotted."
    ),
    storage_max_delay: float = typer.Option(
        10.0,
        "--storage-max-delay",
        min=0,
        help="Longest wait for a snapshot while a document is edited without pause.",
    ),
    grace_period: float = typer.Option(
        5.0, "--grace-period", min=0, help="Seconds a room stays open after its last client."
    ),
    max_message_size: int = typer.Option(
        Limits.max_message_size, "--max-message-size", min=1, help="Largest message, in bytes."
    ),
    send_queue_bytes: int = typer.Option(
        Limits.send_queue_bytes,
        "--send-queue-bytes",
        min=1,
        help="Bytes queued for one client that reads too slowly before it is closed "
        "(4503); the first sync of a larger document is always sent whole.",
    ),
    unwritten_bytes: int = typer.Option(
        Limits.unwritten_bytes,
        "--unwritten-bytes",
        min=1,
        help="Bytes of one document held while storage cannot write them; past it, "
        "writers are closed with 4507 and resend their edits when they reconnect.",
    ),
    fsync: bool = typer.Option(
        True,
        "--fsync/--no-fsync",
        help="fsync every log append on a local folder before the edit is relayed "
        "(an edit then survives a power cut, not only a killed process).",
    ),
    journal: Path | None = typer.Option(
        None,
        "--journal",
        file_okay=False,
        help="Local folder where edits to a remote --storage (s3://…) are made durable "
        "before they are relayed, then uploaded; what a stopped server left there is "
        "uploaded at the next start. Default for remote storage: a folder per storage "
        "URL under ~/.local/state/meshroom/journal.",
    ),
    ping_interval: float = typer.Option(
        3.0,
        "--ping-interval",
        min=0.1,
        help="Seconds between keepalive checks: a peer that stops answering is dropped "
        "within three, and its presence with it.",
    ),
    secret: str | None = typer.Option(
        None,
        "--secret",
        envvar="MESHROOM_SECRET",
        help="Require tokens signed with this secret (see `meshroom token`). Several "
        "secrets separated by spaces are all accepted (key rotation); the first signs.",
    ),
    revocations: Path | None = typer.Option(
        None,
        "--revocations",
        envvar="MESHROOM_REVOCATIONS",
        help="Refuse tokens revoked in this file (written by `meshroom token revoke`; "
        "polled for changes) and close their connections. Needs --secret.",
    ),
    revocation_poll: float = typer.Option(
        1.0,
        "--revocation-poll",
        min=0.05,
        help="Seconds between checks of the --revocations file: a revoked token's "
        "connections close within about that long.",
    ),
    static: Path | None = typer.Option(
        None, "--static", exists=True, file_okay=False, help="Also serve this folder at /."
    ),
    dev: bool = typer.Option(
        False,
        "--dev",
        help="Development only: turn auth on (random secret unless --secret) and serve "
        "login-free tokens at GET /dev/token?room=R&name=N.",
    ),
    log_level: str = typer.Option(
        "info", "--log-level", help="debug, info, warning, error or critical."
    ),
    log_format: str = typer.Option(
        "text",
        "--log-format",
        help="text, or json: one JSON object per line, with room and participant fields.",
    ),
    activity: bool = typer.Option(
        True,
        "--activity/--no-activity",
        help="Log each room session's activity (joins, saves, questions to agents, agent "
        "runs, refusals) beside its documents; read it with `meshroom log`.",
    ),
    activity_retention: float = typer.Option(
        30.0,
        "--activity-retention",
        min=0,
        help="Days a session's activity log is kept (0: forever).",
    ),
    activity_tool_details: bool = typer.Option(
        False,
        "--activity-tool-details",
        help="Also log agents' tool-call arguments and results (they may quote documents).",
    ),
    versions: bool = typer.Option(
        True,
        "--versions/--no-versions",
        help="Keep versions of documents beside them: at each room session's end, before "
        "an agent's edits, every --version-interval minutes of editing, and named ones.",
    ),
    version_interval: float = typer.Option(
        10.0,
        "--version-interval",
        min=0,
        help="Minutes of editing between automatic versions of a document (0: none).",
    ),
    version_retention: str = typer.Option(
        "1,7,90",
        "--version-retention",
        help="Days automatic versions are all kept, then one an hour, then one a day "
        "(ALL,HOURLY,DAILY; DAILY 0: forever). Named versions are always kept.",
    ),
    metrics: bool = typer.Option(
        False, "--metrics", help="Serve Prometheus metrics at /metrics (needs meshdoc[metrics])."
    ),
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        min=1,
        max=65535,
        help="Serve the metrics on this port of --host instead of the server's own.",
    ),
    redis: str | None = typer.Option(
        None,
        "--redis",
        help="Share rooms with other processes through this Redis (redis://host:port/db). "
        "Every document edited anywhere is written by one process that has --storage, "
        "chosen per document; any number of them may have it.",
    ),
    writer_lease: float = typer.Option(
        10.0,
        "--writer-lease",
        min=0.1,
        help="With --redis: seconds after which the documents of a writer that died are "
        "taken over by another process with --storage.",
    ),
) -> None:
    """Serve rooms over the y-websocket protocol (ws://HOST:PORT/{room}/{document path}).

    Before it starts, the server checks that it can listen, that its storage stores
    (it writes, reads back and deletes a marker) and that its Redis answers; any
    problem stops it with one line on stderr (exit 2: a bad option, 1: refused).
    """
    if storage_debounce > storage_max_delay:
        raise typer.BadParameter(
            f"{storage_debounce:g} s is longer than --storage-max-delay ({storage_max_delay:g} s)",
            param_hint="--storage-debounce",
        )
    try:
        from ..versions import Retention

        Retention.parse(version_retention)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--version-retention") from None
    if log_format not in ("text", "json"):
        raise typer.BadParameter(f"{log_format!r} is not text or json", param_hint="--log-format")
    if log_level.lower() not in _LOG_LEVELS:
        raise typer.BadParameter(
            f"{log_level!r} is not one of {', '.join(_LOG_LEVELS)}", param_hint="--log-level"
        )
    secrets_given = (secret or "").split()
    if revocations is not None and not (secrets_given or dev):
        raise typer.BadParameter(
            "revocations need auth: give --secret (or MESHROOM_SECRET)",
            param_hint="--revocations",
        )
    revocation_list = _revocation_list(revocations)
    if secrets_given:
        from ..auth import JwtAuth

        try:
            auth = JwtAuth(
                secrets_given, revocations=revocation_list, revocation_poll=revocation_poll
            )
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--secret") from None
    check_listen(host, port)
    if metrics_port is not None:
        check_listen(host, metrics_port)
    if storage:
        check_storage_option(storage)
    if redis is not None:
        check_redis_option(redis)
    config = ServeConfig(
        host=host,
        port=port,
        storage=storage,
        storage_debounce=storage_debounce,
        storage_max_delay=storage_max_delay,
        grace_period=grace_period,
        max_message_size=max_message_size,
        send_queue_bytes=send_queue_bytes,
        unwritten_bytes=unwritten_bytes,
        fsync=fsync,
        journal=str(journal) if journal is not None else None,
        ping_interval=ping_interval,
        log_level=log_level.lower(),
        redis=redis,
        writer_lease=writer_lease,
        activity=activity,
        activity_retention_days=activity_retention or None,
        activity_tool_details=activity_tool_details,
        versions=versions,
        version_interval_minutes=version_interval or None,
        version_retention=version_retention,
        metrics=metrics or metrics_port is not None,
        metrics_port=metrics_port,
        log_format=log_format,
    )
    # after the checks (their libraries' chatter stays out), before the warnings below
    configure_logging(log_level.lower(), log_format)
    if dev:
        import secrets as _secrets

        from ._dev import dev_token_route

        if not secrets_given:
            from ..auth import JwtAuth

            secrets_given = [_secrets.token_urlsafe(32)]
            auth = JwtAuth(
                secrets_given, revocations=revocation_list, revocation_poll=revocation_poll
            )
        config.routes.append(dev_token_route(secrets_given[0]))
        log.warning("--dev: GET /dev/token gives read-write tokens to anyone; never deploy it")
    if secrets_given:
        config.extensions.append(auth)
    else:
        typer.secho(
            "WARNING: auth is off (no --secret or MESHROOM_SECRET): every room is open, "
            "read-write, to anyone who can reach this server.",
            err=True,
            fg="red",
            bold=True,
        )
    if static is not None:
        from starlette.routing import Mount
        from starlette.staticfiles import StaticFiles

        config.routes.append(Mount("/", app=StaticFiles(directory=static, html=True)))
    run(config)
