"""Check a storage URL before anyone trusts it with edits.

A server that starts on an unusable storage (an unknown protocol, a folder it
cannot write, a bucket that does not exist) accepts edits and only fails when
it first snapshots them, while its clients believe their work is safe.
`probe_storage` writes a marker under the storage root the way snapshots are
written, reads it back and deletes it, so `meshroom serve` refuses to start
with one sentence saying what is wrong instead.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from .._exceptions import StorageError
from ._fsspec import FsspecStorage

__all__ = ["open_storage", "probe_storage", "storage_url"]

#: The marker's name: a leading "." never names a room (room folders encode it as %2E).
_MARKER = ".meshroom-probe-{}"


def storage_url(text: str) -> str:
    """A `--storage` value as an fsspec URL: a plain path becomes an absolute one."""
    if "://" in text:
        return text
    return str(Path(text).expanduser().resolve())  # a plain path: no percent-encoding


def _reason(error: BaseException) -> str:
    """The cause of a failed filesystem call, in a few words."""
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror.lower()}{where}"
    text = " ".join(str(error).split())
    return text or type(error).__name__


def open_storage(url: str, **storage_options: Any) -> FsspecStorage:
    """`FsspecStorage(url)`, with a clear error when fsspec cannot open the URL at all.

    Raises:
        StorageError: the protocol is unknown, or needs a package that is not installed.
    """
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    try:
        return FsspecStorage(url, **storage_options)
    except ImportError as error:
        raise StorageError(f"protocol {protocol!r} needs a package: {_reason(error)}") from error
    except ValueError as error:
        if "protocol not known" in str(error).lower():
            raise StorageError(f"unknown protocol {protocol!r}") from error
        raise StorageError(_reason(error)) from error
    except Exception as error:  # credentials, endpoints: whatever the filesystem refuses
        raise StorageError(_reason(error)) from error


def probe_storage(url: str, **storage_options: Any) -> FsspecStorage:
    """Open `url` and prove it stores: write a marker, read it back, delete it.

    Blocking (call it before the event loop, or in a worker thread).

    Returns:
        The opened storage.

    Raises:
        StorageError: what failed (`open_storage`'s errors, or "cannot write there:
            permission denied", "the bucket does not exist"…).
    """
    storage = open_storage(url, **storage_options)
    marker = f"{storage.root.rstrip('/')}/{_MARKER.format(uuid.uuid4().hex)}"
    data = b"meshroom storage probe\n"
    try:
        storage._put_atomic(marker, data, f"{marker}.tmp")  # as snapshots are written
    except Exception as error:
        raise StorageError(f"cannot write there: {_reason(error)}") from error
    try:
        if storage.fs.cat_file(marker) != data:
            raise StorageError("a marker written there reads back different")
    except StorageError:
        raise
    except Exception as error:
        raise StorageError(f"cannot read back what was written: {_reason(error)}") from error
    try:
        storage.fs.rm_file(marker)
    except Exception as error:
        raise StorageError(f"cannot delete there: {_reason(error)}") from error
    return storage
