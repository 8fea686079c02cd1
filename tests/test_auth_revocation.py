"""Revocation: by token id or by participant, at connect and on live connections.

Real servers over real sockets: `JwtAuth.revoke` in process, the revocation file
polled by the extension, and `meshroom token revoke` run as a subprocess against
`meshroom serve` run as a subprocess. Each test checks the revoked side (4401
"token revoked") and that everyone else is untouched.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import anyio
import jwt
import pytest
from conftest import ROOT, free_port, run_server, serve_output, start_meshroom_serve
from test_auth_peer import SECRET, open_peer

from meshroom import CloseCode
from meshroom.auth import (
    Grant,
    JwtAuth,
    RevocationList,
    RevocationListError,
    mint_token,
    read_revocations,
    revoke_in_file,
    verify_token,
)

pytestmark = pytest.mark.anyio

REVOKED = "token revoked"
#: `meshroom serve --secret` splits on spaces (several secrets): one without any.
CLI_SECRET = "revocation-tests-0123456789-abcdefghij"


def token(pid: str = "ann", jti: str | None = None, **options) -> str:
    return mint_token(
        secret=SECRET, grants=[Grant("team")], participant_id=pid, token_id=jti, **options
    )


def test_minted_tokens_carry_an_id_and_a_precise_issue_time():
    first, second = verify_token(token(), SECRET), verify_token(token(), SECRET)
    assert first.token_id and second.token_id and first.token_id != second.token_id
    assert verify_token(token(jti="mine"), SECRET).token_id == "mine"
    issued = jwt.decode(token(now=1767225600.1234), options={"verify_signature": False})["iat"]
    assert issued == 1767225600.123  # to the millisecond: later tokens are told apart


async def test_revoke_by_jti_closes_live_connections_and_refuses_the_token():
    auth = JwtAuth(SECRET)
    async with run_server(extensions=[auth]) as live:
        revoked, other = token("ann", "t-1"), token("ann", "t-2")
        async with (
            open_peer(live.base_url, "team", "a.md", revoked) as doomed,
            open_peer(live.base_url, "team", "", revoked) as doomed_room,
            open_peer(live.base_url, "team", "a.md", other) as kept,
        ):
            started = time.monotonic()
            assert auth.revoke(jti="t-1") == 2
            assert await doomed.wait_closed() == CloseCode.UNAUTHENTICATED
            assert await doomed_room.wait_closed() == CloseCode.UNAUTHENTICATED
            assert doomed.close_reason == REVOKED
            assert time.monotonic() - started < 1
            await kept.write("still here")
            await kept.barrier()
            assert not kept.closed.is_set()
        for via in ("query", "header", "message"):
            async with open_peer(
                live.base_url, "team", "a.md", revoked, via=via, wait_sync=False
            ) as refused:
                assert await refused.wait_closed() == CloseCode.UNAUTHENTICATED
                assert refused.close_reason == REVOKED
                assert set(refused.types) <= {2}  # nothing of the document


async def test_revoking_a_participant_spares_tokens_issued_later():
    auth = JwtAuth(SECRET)
    async with run_server(extensions=[auth]) as live:
        old, bob = token("ann", now=time.time() - 5), token("bob")
        async with (
            open_peer(live.base_url, "team", "a.md", old) as ann,
            open_peer(live.base_url, "team", "a.md", token("ann")) as ann_again,
            open_peer(live.base_url, "team", "a.md", bob) as other,
        ):
            assert auth.revoke(participant="ann") == 2
            assert await ann.wait_closed() == CloseCode.UNAUTHENTICATED
            assert await ann_again.wait_closed() == CloseCode.UNAUTHENTICATED
            await other.barrier()
            assert not other.closed.is_set()
        async with open_peer(live.base_url, "team", "a.md", old, wait_sync=False) as refused:
            assert await refused.wait_closed() == CloseCode.UNAUTHENTICATED
        await anyio.sleep(0.01)  # `iat` counts milliseconds: one issued in the same one is revoked
        fresh = token("ann")  # issued after the revocation
        async with open_peer(live.base_url, "team", "a.md", fresh) as back:
            await back.write("back again")
            await back.barrier()
            assert not back.closed.is_set()
        # A token without `iat` cannot prove it is newer than the revocation.
        claims = {"sub": "ann", "exp": int(time.time()) + 60, "grants": [{"room": "team"}]}
        undated = jwt.encode(claims, SECRET, algorithm="HS256")
        async with open_peer(live.base_url, "team", "a.md", undated, wait_sync=False) as refused:
            assert await refused.wait_closed() == CloseCode.UNAUTHENTICATED


async def test_revocation_file_is_polled_and_a_bad_one_keeps_the_last_good(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="meshroom.auth")
    path = tmp_path / "revoked.json"
    auth = JwtAuth(SECRET, revocations=path, revocation_poll=0.2)  # missing file: empty list
    async with run_server(extensions=[auth]) as live:
        first, second, kept = token("ann", "t-1"), token("bob", "t-2"), token("cat", "t-3")
        async with (
            open_peer(live.base_url, "team", "a.md", first) as ann,
            open_peer(live.base_url, "team", "a.md", second) as bob,
            open_peer(live.base_url, "team", "a.md", kept) as cat,
        ):
            started = time.monotonic()
            revoke_in_file(path, tokens=["t-1"])
            assert await ann.wait_closed() == CloseCode.UNAUTHENTICATED
            closed_after = time.monotonic() - started
            assert ann.close_reason == REVOKED
            assert closed_after < 0.2 + 1.0, closed_after

            path.write_text('{"tokens": ["t-1", "t-2"')  # half written: not a list
            await anyio.sleep(0.6)
            path.write_text('{"tokens": [1]}')  # JSON, not a revocation list
            await anyio.sleep(0.6)
            kept_lines = [r for r in caplog.records if "kept as it was" in r.getMessage()]
            assert len(kept_lines) == 2  # once per bad version, not once per poll
            assert not bob.closed.is_set() and not cat.closed.is_set()
            async with open_peer(live.base_url, "team", "a.md", first, wait_sync=False) as again:
                assert await again.wait_closed() == CloseCode.UNAUTHENTICATED  # last good list

            path.unlink()  # gone: still the last good list
            await anyio.sleep(0.5)
            async with open_peer(live.base_url, "team", "a.md", first, wait_sync=False) as again:
                assert await again.wait_closed() == CloseCode.UNAUTHENTICATED

            revoke_in_file(path, tokens=["t-2"])
            assert await bob.wait_closed() == CloseCode.UNAUTHENTICATED
            await cat.barrier()
            assert not cat.closed.is_set()
        # t-1 left the file: only the file revoked it, so it works again
        async with open_peer(live.base_url, "team", "a.md", first) as ann_again:
            assert ann_again.synced.is_set()


def test_revocation_file_format_and_errors(tmp_path):
    path = tmp_path / "r.json"
    assert read_revocations(path).tokens == frozenset()
    revoke_in_file(path, tokens=["a"], participants=["ann"], now=100.5)
    revoke_in_file(path, participants=["ann"], now=200.0)
    data = json.loads(path.read_text())
    assert data == {"version": 1, "tokens": ["a"], "participants": {"ann": 200.0}}
    revocations = read_revocations(path)
    assert revocations.revokes("a", "bob", None)
    assert revocations.revokes(None, "ann", 199.9)
    assert not revocations.revokes(None, "ann", 200.001)
    assert not revocations.revokes("b", "bob", 1.0)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind

    for text, message in [
        ("[]", "must be a JSON object"),
        ('{"tokens": "a"}', "'tokens' must be a list"),
        ('{"participants": {"ann": "yesterday"}}', "must map to a Unix time"),
        ('{"revoked": []}', "unknown fields"),
        ("{", "is not JSON"),
    ]:
        path.write_text(text)
        with pytest.raises(RevocationListError, match=message):
            RevocationList(path)
        with pytest.raises(RevocationListError, match=message):
            JwtAuth(SECRET, revocations=path)
        with pytest.raises(RevocationListError):
            revoke_in_file(path, tokens=["x"])
        assert path.read_text() == text  # a bad file is never overwritten


# -- `meshroom serve` and `meshroom token revoke` as subprocesses --------------------------------


def _meshroom(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshroom", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


async def test_meshroom_token_revoke_against_meshroom_serve(tmp_path):
    path = tmp_path / "revoked.json"
    port = free_port()
    minted = _meshroom(
        "token", "--room", "team", "--id", "ann", "--jti", "ann-laptop", "--secret", CLI_SECRET
    )
    assert minted.returncode == 0, minted.stderr
    ann_token = minted.stdout.strip()
    assert verify_token(ann_token, CLI_SECRET).token_id == "ann-laptop"
    bob_token = _meshroom("token", "--room", "team", "--id", "bob", "--secret", CLI_SECRET)
    assert verify_token(bob_token.stdout.strip(), CLI_SECRET).token_id  # a jti by default
    process = start_meshroom_serve(
        port, "--secret", CLI_SECRET, "--revocations", str(path), "--revocation-poll", "0.5"
    )
    base = f"ws://127.0.0.1:{port}"
    try:
        async with (
            open_peer(base, "team", "a.md", ann_token) as ann,
            open_peer(base, "team", "a.md", bob_token.stdout.strip()) as bob,
        ):
            started = time.monotonic()
            revoked = await anyio.to_thread.run_sync(
                lambda: _meshroom("token", "revoke", "--jti", "ann-laptop", "--revocations", path)
            )
            assert revoked.returncode == 0, revoked.stderr
            assert "revoked token ann-laptop" in revoked.stderr
            assert await ann.wait_closed() == CloseCode.UNAUTHENTICATED
            assert ann.close_reason == REVOKED
            assert time.monotonic() - started < 0.5 + 2.0  # the CLI's start-up included
            await bob.barrier()
            assert not bob.closed.is_set()

            revoked = await anyio.to_thread.run_sync(
                lambda: _meshroom(
                    "token", "revoke", "--participant", "bob", env={"MESHROOM_REVOCATIONS": path}
                )
            )
            assert revoked.returncode == 0, revoked.stderr
            assert await bob.wait_closed() == CloseCode.UNAUTHENTICATED
        fresh = await anyio.to_thread.run_sync(
            lambda: _meshroom("token", "--room", "team", "--id", "bob", "--secret", CLI_SECRET)
        )
        async with open_peer(base, "team", "a.md", fresh.stdout.strip()) as bob_again:
            assert bob_again.synced.is_set()
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert "Traceback" not in serve_output(process)


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    result = _meshroom("token", "revoke", "--jti", "x", "--revocations", str(bad))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("meshroom token revoke: ")
    assert "is not JSON" in result.stderr and "left as it was" in result.stderr
    assert bad.read_text() == "not json"

    result = _meshroom("token", "revoke", "--revocations", str(tmp_path / "r.json"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "give --jti or --participant" in result.stderr

    result = _meshroom("token", "--secret", CLI_SECRET)
    assert result.returncode == 2 and "--room" in result.stderr, result.stderr
    assert result.stdout == ""

    port = free_port()
    result = _meshroom(
        "serve", "--port", str(port), "--secret", CLI_SECRET, "--revocations", str(bad)
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("meshroom serve: Invalid value for --revocations: ")
    assert "is not JSON" in result.stderr

    result = _meshroom("serve", "--port", str(port), "--revocations", str(bad))
    assert result.returncode == 2 and "revocations need auth" in result.stderr, result.stderr
