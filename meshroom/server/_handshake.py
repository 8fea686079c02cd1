"""Who is connecting: token discovery and the `on_authenticate` chain.

A token comes from the query (`?token=`), an `Authorization: Bearer` header,
or, when an extension `requires_token` and neither is present, from the
connection's first message, a y-websocket AUTH message (type 2, var-string
token). A client that sends anything else first has no token: it is refused at
once (4401 "token required"), not left waiting, since an unmodified
y-websocket client opens with sync step 1 and would never send one. A client
that sends nothing is refused after `Limits.auth_timeout`.

Once admitted, the session's first message tells the client who it is (see
`encode_authenticated`): with auth, the token's ``sub`` is the participant id,
whatever the client asked for in the query.

Without any auth extension, access is open: identity comes from the query
(`id`, `name`, `kind` = person | agent), with a generated id when absent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import anyio

from .._exceptions import AuthenticationError
from ..protocol._close_codes import CloseCode
from ..protocol._messages import AuthMessage, decode_auth_token, decode_message
from ._connection import Connection
from ._hooks import Access, AuthenticatePayload, Extension
from ._limits import Limits, TokenBucket

__all__ = ["Admission", "admit", "decide"]

_KINDS = ("person", "agent")
_MAX_QUERY_VALUE = 200


@dataclass
class Admission:
    """The outcome of a handshake: the access granted."""

    access: Access


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer …` header, if any (header names any case)."""
    for name, value in headers.items():
        if name.lower() == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def open_access(query: Mapping[str, str]) -> Access:
    """Identity from query parameters, for servers without an auth extension.

    Raises:
        AuthenticationError: `kind` is not person/agent, or a value is too long.
    """
    for key in ("id", "name", "kind"):
        if len(query.get(key, "")) > _MAX_QUERY_VALUE:
            raise AuthenticationError(
                f"query parameter {key!r} is longer than {_MAX_QUERY_VALUE} characters",
                code=CloseCode.PROTOCOL_ERROR,
            )
    kind = query.get("kind") or "person"
    if kind not in _KINDS:
        raise AuthenticationError(
            f"query parameter 'kind' must be 'person' or 'agent', got {kind!r}",
            code=CloseCode.PROTOCOL_ERROR,
        )
    participant_id = query.get("id") or f"anonymous-{uuid.uuid4().hex[:12]}"
    return Access(participant_id=participant_id, name=query.get("name") or "", kind=kind)  # type: ignore[arg-type]


async def _await_token(connection: Connection, limits: Limits, bucket: TokenBucket) -> str:
    """The token of the connection's first message, which must be an AUTH message."""
    with anyio.fail_after(limits.auth_timeout):
        data = await connection.recv()
    if len(data) > limits.pre_auth_bytes:
        raise AuthenticationError(
            f"more than {limits.pre_auth_bytes} bytes before authenticating",
            code=CloseCode.UNAUTHENTICATED,
        )
    if not bucket.take():
        raise AuthenticationError(
            "too many messages before authenticating", code=CloseCode.RATE_LIMITED
        )
    message = decode_message(data)
    if not isinstance(message, AuthMessage):
        raise AuthenticationError(
            "token required (in the query, an Authorization header, or a first AUTH message)",
            code=CloseCode.UNAUTHENTICATED,
        )
    return decode_auth_token(message.body)


async def admit(
    connection: Connection,
    *,
    room: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    client: str | None,
    extensions: Sequence[Extension],
    limits: Limits,
    bucket: TokenBucket,
) -> Admission:
    """Run the handshake: find the token, ask the extensions, decide.

    Raises:
        AuthenticationError: refused (its `code` is the close code).
        ProtocolError: a malformed message arrived while waiting for the token.
        ConnectionClosed: the client left during the handshake.
    """
    requires_token = any(extension.requires_token for extension in extensions)
    token = query.get("token") or bearer_token(headers)
    if token is None and requires_token:
        try:
            token = await _await_token(connection, limits, bucket)
        except TimeoutError:
            raise AuthenticationError(
                f"no token within {limits.auth_timeout:g} s", code=CloseCode.AUTH_TIMEOUT
            ) from None
    payload = AuthenticatePayload(
        room=room, path=path, token=token, headers=dict(headers), client=client
    )
    access = await decide(payload, extensions, requires_token=requires_token)
    return Admission(access if access is not None else open_access(query))


async def decide(
    payload: AuthenticatePayload, extensions: Sequence[Extension], *, requires_token: bool
) -> Access | None:
    """The first `Access` an extension grants; None for open access (no extension needs one).

    The same chain decides a connection's first token and every token it sends later
    to refresh its credentials (see `_reauth`).

    Raises:
        AuthenticationError: an extension refused, or tokens are required and none admitted.
    """
    for extension in extensions:
        access = await extension.on_authenticate(payload)
        if access is not None:
            return access
    if requires_token:
        raise AuthenticationError(
            "no token" if payload.token is None else "token not accepted",
            code=CloseCode.UNAUTHENTICATED,
        )
    return None
