"""`meshroom serve` refuses what it cannot honour with one line, before it starts serving.

Every case runs the real command (`python -m meshroom serve …`) as a subprocess:
a bad option value, a storage that does not store (unknown protocol, a folder
whose parent is a regular file, which root cannot write either, an S3 bucket
that does not exist), a dead Redis, a port already taken. Each must exit
non-zero with exactly one line on stderr and no traceback; a server that did
start instead would hang the call and fail it on its timeout.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from importlib.metadata import version
from pathlib import Path

import pytest
from conftest import ROOT, free_port, start_meshroom_serve
from test_storage_providers import s3_endpoint

__all__ = ["s3_endpoint"]  # the moto fixture


def meshroom(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshroom", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one stderr line of a failed command (the test fails on anything else)."""
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "99999"], "Invalid value for '--port': Input should be less than or equal to"),
        (["--port", "0"], "Invalid value for '--port'"),
        (["--port", "-5"], "Invalid value for '--port'"),
        (["--grace-period", "-1"], "Invalid value for '--grace-period'"),
        (["--max-message-size", "0"], "Invalid value for '--max-message-size'"),
        (["--storage-debounce", "-1"], "Invalid value for '--storage-debounce'"),
        (
            ["--storage-debounce", "5", "--storage-max-delay", "1"],
            "5 s is longer than --storage-max-delay (1 s)",
        ),
        (["--log-level", "loud"], "'loud' is not one of debug, info, warning, error, critical"),
        (["--dev", "yes"], "unexpected extra argument"),  # a switch takes no value
        (["--redis", "http://127.0.0.1:6379"], "not a redis://host:port/db URL"),
        (["--secret", "short"], "at least 32 bytes"),
    ],
)
def test_bad_option_values_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    done = meshroom("serve", "--port", str(free_port()), *args)
    line = error_line(done)
    assert done.returncode == 2
    assert line.startswith("meshroom serve: ") and expected in line, line
    assert line.endswith("(see 'meshroom serve --help')")


def test_unknown_storage_protocol() -> None:
    done = meshroom("serve", "--port", str(free_port()), "--storage", "foo://bar")
    assert error_line(done) == "meshroom serve: storage foo://bar: unknown protocol 'foo'"
    assert done.returncode == 2


def test_unwritable_storage_folder_is_refused_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file: nothing, not even root, makes a folder under it")
    target = blocker / "rooms"
    done = meshroom("serve", "--port", str(free_port()), "--storage", str(target))
    assert done.returncode == 1
    assert error_line(done) == (
        f"meshroom serve: storage {target}: cannot write there: not a directory ({target})"
    )


def test_missing_s3_bucket_is_refused_and_an_existing_one_is_probed_clean(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    aws = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = meshroom(
        "serve", "--port", str(free_port()), "--storage", "s3://no-such-bucket/rooms", env=aws
    )
    assert done.returncode == 1
    assert error_line(done) == (
        "meshroom serve: storage s3://no-such-bucket/rooms: cannot write there: "
        "The specified bucket does not exist"
    )

    import s3fs

    for key, value in aws.items():
        monkeypatch.setenv(key, value)  # start_meshroom_serve passes the environment on
    prefix = f"meshroom-test/{uuid.uuid4().hex}"
    port = free_port()
    process = start_meshroom_serve(port, "--storage", f"s3://{prefix}")
    try:
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        assert fs.find(prefix) == []  # the probe's marker is gone
        assert not fs.exists("no-such-bucket")  # and the refused bucket was never created
    finally:
        process.terminate()
        process.wait(30)


def test_storage_folder_is_probed_and_left_empty(tmp_path: Path) -> None:
    rooms = tmp_path / "new" / "rooms"
    port = free_port()
    process = start_meshroom_serve(port, "--storage", str(rooms))
    try:
        assert rooms.is_dir() and list(rooms.iterdir()) == []
    finally:
        process.terminate()
        process.wait(30)


def test_dead_redis_is_one_line() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = meshroom("serve", "--port", str(free_port()), "--redis", url)
    assert done.returncode == 1
    line = error_line(done)
    assert line.startswith(f"meshroom serve: redis: cannot reach Redis at {url}: ")
    assert "Connection refused" in line


def test_port_already_taken_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = meshroom("serve", "--port", str(port))
    assert done.returncode == 1
    assert error_line(done) == (
        f"meshroom serve: cannot listen on 127.0.0.1:{port}: address already in use"
    )


def test_help_shows_switches_without_a_value_placeholder() -> None:
    done = meshroom("serve", "--help")
    assert done.returncode == 0, done.stderr
    assert "<bool>" not in done.stdout
    switches = [line.split() for line in done.stdout.splitlines() if line.strip().startswith("--")]
    by_name = {words[0]: words for words in switches}
    assert by_name["--dev"][1] == "Development"  # the help text follows the switch directly
    assert by_name["--help"][1] == "Show"
    assert by_name["--port"][1].startswith("<int")  # options that take a value still say so
    for command in (["agent"], ["token"], ["doc", "import"], ["doc", "export"]):
        assert "<bool>" not in meshroom(*command, "--help").stdout


def test_version() -> None:
    done = meshroom("--version")
    assert (done.returncode, done.stdout) == (0, f"meshroom {version('meshdoc')}\n")


def test_unknown_command_is_one_line() -> None:
    done = meshroom("serv")
    assert done.returncode == 2
    assert error_line(done) == (
        "meshroom: No such command 'serv'. Did you mean 'serve'? (see 'meshroom --help')"
    )
