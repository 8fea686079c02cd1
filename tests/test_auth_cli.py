"""`meshroom token`: mints a verifiable token; bad input is a clear error and prints no token."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from meshroom.auth import Grant, TokenVerifier
from meshroom.cli import _register_commands, app

SECRET = "correct horse battery staple 0123456789"

_register_commands()
runner = CliRunner()


def _mint(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["token", *args], env=env)


def test_read_only_token_for_notes():
    result = _mint(
        "--room", "team", "--path", "notes/*", "--read-only", "--name", "Ann",
        "--id", "ann-1", "--kind", "agent", "--expires", "2h", "--attr", "color=#f80",
        "--secret", SECRET,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    claims = TokenVerifier(SECRET).verify(result.stdout.strip())
    assert (claims.participant_id, claims.name, claims.kind) == ("ann-1", "Ann", "agent")
    assert claims.grants == (Grant("team", ["notes/*"], read_only=True),)
    assert claims.attributes == {"color": "#f80"}
    assert claims.expires_at.timestamp() == pytest.approx(time.time() + 7200, abs=10)


def test_room_permissions_options():
    result = _mint(
        "--room", "team", "--read-only", "--no-messages", "--no-call-tools",
        "--secret", SECRET,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    claims = TokenVerifier(SECRET).verify(result.stdout.strip())
    assert claims.grants == (Grant("team", read_only=True, messages=False, call_tools=False),)
    access = claims.access_for("team", "")
    assert (access.may_message, access.may_offer_tools, access.may_call_tools) == (
        False,
        True,
        False,
    )
    # by default a read-only token may still talk in the room
    default = TokenVerifier(SECRET).verify(
        _mint("--room", "team", "--read-only", "--secret", SECRET).stdout.strip()
    )
    assert default.access_for("team", "notes.md").may_message is True


def test_several_rooms_default_path_and_env_secret():
    result = _mint("--room", "a", "--room", "b", env={"MESHROOM_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    claims = TokenVerifier(SECRET).verify(result.stdout.strip())
    assert claims.grants == (Grant("a", ["*"]), Grant("b", ["*"]))
    assert claims.access_for("b", "x/y.md").read_only is False


def test_private_key_file(tmp_path):
    private = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    result = _mint(
        "--room", "team", "--private-key", str(key_file), "--algorithm", "ES256",
        "--key-id", "k1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert TokenVerifier(public_key={"k1": public}).verify(result.stdout.strip()).grants


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--room", "team", "--secret", "short"], "at least 32 bytes"),
        (["--room", "team"], "--secret"),
        (["--room", "team", "--secret", SECRET, "--expires", "soon"], "duration"),
        (["--room", "team", "--secret", SECRET, "--expires", "0"], "duration"),
        (["--room", "team", "--secret", SECRET, "--kind", "robot"], "person or agent"),
        (["--room", "team", "--secret", SECRET, "--attr", "novalue"], "KEY=VALUE"),
        (["--room", "team", "--secret", SECRET, "--path", "/abs"], "must not start"),
        (["--room", "", "--secret", SECRET], "must not be empty"),
        (["--secret", SECRET], "--room"),
    ],
)
def test_bad_input_is_a_clear_error(args, message):
    result = _mint(*args, env={"MESHROOM_SECRET": ""} if "--secret" not in args else None)
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", " ").split())
    assert "eyJ" not in result.stdout


def test_console_entry_point_runs():
    done = subprocess.run(
        [sys.executable, "-c", "from meshroom.cli import main; main()", "token",
         "--room", "team", "--read-only", "--secret", SECRET],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    claims = TokenVerifier(SECRET).verify(done.stdout.strip())
    assert claims.access_for("team", "any.md").read_only is True


_SERVE = "import sys; from meshroom.cli import main; sys.argv = ['meshroom', *sys.argv[1:]]; main()"


def _serve_script(*args: str) -> str:
    return f"import sys; sys.argv[1:] = {list(args)!r}; " + _SERVE


def test_serve_with_secrets_requires_tokens_and_accepts_rotated_ones():
    import anyio
    from conftest import free_port
    from test_auth_peer import open_peer, start_server, stop_server

    from meshroom.auth import mint_token

    new, old = "n" * 32 + "-new", "o" * 32 + "-old"  # a space separates several secrets
    port = free_port()
    process = start_server(
        _serve_script("serve", "--port", str(port), "--log-level", "warning"),
        port,
        {"MESHROOM_SECRET": f"{new} {old}"},
    )

    async def check() -> None:
        base = f"ws://127.0.0.1:{port}"
        for secret in (new, old):
            token = mint_token(secret=secret, grants=[Grant("team")], participant_id="a")
            async with open_peer(base, "team", "a.md", token) as peer:
                assert peer.synced.is_set()
        async with open_peer(base, "team", "a.md", "junk", wait_sync=False) as refused:
            assert await refused.wait_closed() == 4401

    try:
        anyio.run(check)
    finally:
        output = stop_server(process)
    assert "auth is off" not in output


def test_serve_without_secret_warns_loudly_and_short_secret_is_refused():
    from conftest import free_port
    from test_auth_peer import start_server, stop_server

    port = free_port()
    process = start_server(
        _serve_script("serve", "--port", str(port)), port, {"MESHROOM_SECRET": ""}
    )
    output = stop_server(process)
    assert "every room is open" in output
    done = subprocess.run(
        [sys.executable, "-c", _SERVE, "serve", "--secret", "short"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "at least 32 bytes" in " ".join(done.stderr.replace("│", " ").split())
