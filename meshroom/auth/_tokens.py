"""Minting and verifying meshroom tokens (JWTs, via `pyjwt`).

A token says who the participant is and what it may open::

    {"sub": "ann-1", "name": "Ann", "kind": "person",
     "grants": [{"room": "team", "paths": ["notes/*"], "mode": "read-only"}],
     "iat": 1767225600.125, "exp": 1767229200, "jti": "5f0c9a…", "attrs": {"color": "#f80"}}

``exp`` is required: a token that never expires cannot be revoked by time.
``jti`` (a random id `mint_token` always writes) lets one token be revoked; ``iat``
(to the millisecond, so a token issued just after a participant's revocation is
told apart from one issued just before) lets a participant's older tokens be.
Verification failures raise `AuthenticationError` with close code 4401 and a
short reason a client can show (the close reason is capped at 123 bytes).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt

from .._exceptions import AuthenticationError
from ..protocol._close_codes import CloseCode
from ..server._hooks import Access, ParticipantKind
from ._grants import Grant, is_admin, parse_grants, resolve_mode, resolve_permissions
from ._keys import KeySet, check_secret, family_of

__all__ = ["TokenClaims", "TokenVerifier", "mint_token", "verify_token"]

_KINDS = ("person", "agent")
#: Default clock-skew tolerance, in seconds, for ``exp``, ``nbf`` and ``iat``.
DEFAULT_LEEWAY = 30.0
#: Longest token accepted, in characters. Default 8 KiB: a token with dozens of grants
#: fits; a megabyte of base64 sent to make the server parse JSON does not.
MAX_TOKEN_LENGTH = 8 * 1024


@dataclass(frozen=True)
class TokenClaims:
    """The verified content of a token."""

    participant_id: str
    name: str
    kind: ParticipantKind
    grants: tuple[Grant, ...]
    expires_at: datetime
    attributes: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    #: The ``jti`` claim, which names this token in a revocation list (None: absent).
    token_id: str | None = None
    #: The ``iat`` claim (None: absent), which a participant's revocation compares to.
    issued_at: datetime | None = None

    def access_for(self, room: str, path: str) -> Access | None:
        """The `Access` these grants give to `path` of `room`, or None if they give none."""
        mode = resolve_mode(self.grants, room, path)
        if mode is None:
            return None
        return Access(
            participant_id=self.participant_id,
            name=self.name,
            kind=self.kind,
            read_only=mode == "read-only",
            admin=is_admin(self.grants, room),
            **resolve_permissions(self.grants, room),
            attributes=dict(self.attributes),
            token_id=self.token_id,
            issued_at=self.issued_at.timestamp() if self.issued_at is not None else None,
        )


def _seconds(value: float | timedelta) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError("durations must be finite")
    return seconds


def mint_token(
    *,
    grants: Iterable[Grant],
    secret: str | bytes | None = None,
    private_key: Any = None,
    algorithm: str | None = None,
    participant_id: str | None = None,
    name: str = "",
    kind: ParticipantKind = "person",
    expires_in: float | timedelta = 3600,
    not_before: float | timedelta | None = None,
    attributes: Mapping[str, Any] | None = None,
    key_id: str | None = None,
    issuer: str | None = None,
    audience: str | None = None,
    token_id: str | None = None,
    now: float | None = None,
) -> str:
    """Sign a token for one participant.

    ```py
    token = mint_token(secret="s" * 32, name="Ann", grants=[Grant("team", ["notes/*"])])
    assert verify_token(token, secret="s" * 32).name == "Ann"
    ```

    Args:
        grants: what the token opens; at least one.
        secret: HMAC secret (HS256 by default), at least 32 bytes.
        private_key: PEM or `cryptography` private key (RS256 by default; ES256 for EC keys
            when `algorithm` says so).
        participant_id: the ``sub`` claim; a random UUID when omitted.
        expires_in: lifetime in seconds (or a timedelta), counted from `now`.
        not_before: seconds from `now` before which the token is refused.
        key_id: written to the ``kid`` header so a server holding several keys picks this one.
        token_id: the ``jti`` claim, which `JwtAuth.revoke(jti=...)` and ``meshroom token
            revoke --jti`` name; a random id when omitted, so every token can be revoked.
        now: the issue time (Unix seconds), for tests and pre-dated tokens.

    Raises:
        ValueError: no key or two keys, a short secret, no grants, an unknown kind,
            a non-positive lifetime.
    """
    if (secret is None) == (private_key is None):
        raise ValueError("give exactly one of secret= (HMAC) or private_key= (RS/ES)")
    grant_list = list(grants)
    if not grant_list:
        raise ValueError("a token needs at least one grant")
    if not all(isinstance(grant, Grant) for grant in grant_list):
        raise ValueError("grants must be Grant objects")
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'person' or 'agent', not {kind!r}")
    if not isinstance(name, str):
        raise ValueError("name must be a string")
    if token_id is not None and (not isinstance(token_id, str) or not token_id):
        raise ValueError("token_id must be a non-empty string")
    lifetime = _seconds(expires_in)
    if lifetime <= 0:
        raise ValueError("expires_in must be positive")
    if secret is not None:
        key: Any = check_secret(secret)
        algorithm = algorithm or "HS256"
        if family_of(algorithm) != "hmac":
            raise ValueError(f"algorithm {algorithm!r} does not sign with a secret")
    else:
        key = private_key
        algorithm = algorithm or "RS256"
        if family_of(algorithm) != "asymmetric":
            raise ValueError(f"algorithm {algorithm!r} does not sign with a private key")
    issued = time.time() if now is None else float(now)
    claims: dict[str, Any] = {
        "sub": participant_id or str(uuid.uuid4()),
        "name": name,
        "kind": kind,
        "grants": [grant.to_claim() for grant in grant_list],
        # to the millisecond, rounded down: never later than the instant it was issued,
        # so a revocation of the participant right after it always covers it
        "iat": math.floor(issued * 1000) / 1000,
        "exp": int(issued + lifetime),
        "jti": token_id or uuid.uuid4().hex,
    }
    if not_before is not None:
        claims["nbf"] = int(issued + _seconds(not_before))
    if attributes:
        claims["attrs"] = dict(attributes)
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    headers = {"kid": key_id} if key_id else None
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def _refuse(reason: str) -> AuthenticationError:
    return AuthenticationError(reason[:120], code=CloseCode.UNAUTHENTICATED)


_CLAIM_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidAudienceError, "token audience not accepted"),
    (jwt.InvalidIssuerError, "token issuer not accepted"),
    (jwt.MissingRequiredClaimError, "token lacks a required claim"),
)


class TokenVerifier:
    """Verifies tokens against a key set; holds no per-token state.

    Args:
        secret: HMAC secret(s): one, a list (all accepted: key rotation), or ``{kid: secret}``.
        public_key: public key(s) in the same shapes, for RS256/ES256 tokens.
        algorithms: accepted algorithms; default HS256 for secrets, RS256 and ES256 for
            public keys. ``none`` is never accepted.
        leeway: clock-skew tolerance in seconds for ``exp``/``nbf``/``iat`` (default 30 s:
            servers and token issuers rarely drift more, and a stolen token gains little).
        issuer: when set, tokens must carry this ``iss``.
        audience: when set, tokens must carry this ``aud``.
    """

    def __init__(
        self,
        secret: str | bytes | Sequence[str | bytes] | Mapping[str, str | bytes] | None = None,
        *,
        public_key: Any = None,
        algorithms: Sequence[str] | None = None,
        leeway: float | timedelta = DEFAULT_LEEWAY,
        issuer: str | None = None,
        audience: str | None = None,
    ) -> None:
        self._keys = KeySet(secret, public_key)
        if algorithms is None:
            families = self._keys.families()
            algorithms = (["HS256"] if "hmac" in families else []) + (
                ["RS256", "ES256"] if "asymmetric" in families else []
            )
        for algorithm in algorithms:
            if family_of(algorithm) is None:
                raise ValueError(f"algorithm {algorithm!r} is not accepted")
        self.algorithms = tuple(algorithms)
        self.leeway = _seconds(leeway)
        if self.leeway < 0:
            raise ValueError("leeway must not be negative")
        self.issuer = issuer
        self.audience = audience

    def verify(self, token: str) -> TokenClaims:
        """Check signature, expiry and shape; return the claims.

        Raises:
            AuthenticationError: (code 4401) malformed, badly signed, expired, not yet valid.
        """
        if not isinstance(token, str) or not token:
            raise _refuse("missing token")
        if len(token) > MAX_TOKEN_LENGTH:
            raise _refuse(f"token longer than {MAX_TOKEN_LENGTH} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _refuse("malformed token") from None
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise _refuse(f"token algorithm {str(algorithm)[:20]!r} not accepted")
        payload: dict[str, Any] | None = None
        for key in self._keys.candidates(algorithm, header.get("kid")):
            try:
                payload = jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    leeway=self.leeway,
                    issuer=self.issuer,
                    audience=self.audience,
                    options={
                        "require": ["exp", "sub"],
                        "verify_aud": self.audience is not None,
                    },
                )
                break
            except (jwt.InvalidSignatureError, jwt.InvalidKeyError):
                continue
            except jwt.PyJWTError as error:
                for kind, reason in _CLAIM_ERRORS:
                    if isinstance(error, kind):
                        raise _refuse(reason) from None
                raise _refuse("malformed token") from None
            except (ValueError, TypeError):
                continue
        if payload is None:
            raise _refuse("token signature is not valid")
        return _claims_from(payload)


def _claims_from(payload: dict[str, Any]) -> TokenClaims:
    subject = payload.get("sub")
    if not isinstance(subject, str) or not subject or len(subject) > 256:
        raise _refuse("token subject must be a non-empty string")
    name = payload.get("name", "")
    kind = payload.get("kind", "person")
    attributes = payload.get("attrs", {})
    if not isinstance(name, str) or kind not in _KINDS or not isinstance(attributes, dict):
        raise _refuse("token name, kind or attrs malformed")
    try:
        grants = parse_grants(payload.get("grants"))
    except ValueError as error:
        raise _refuse(f"token grants malformed: {error}") from None
    token_id = payload.get("jti")
    if token_id is not None and (not isinstance(token_id, str) or len(token_id) > 256):
        raise _refuse("token id (jti) must be a string")
    issued = payload.get("iat")
    if issued is not None and (isinstance(issued, bool) or not isinstance(issued, (int, float))):
        raise _refuse("token issue time (iat) must be a number")
    return TokenClaims(
        participant_id=subject,
        name=name,
        kind=kind,
        grants=grants,
        expires_at=datetime.fromtimestamp(int(payload["exp"]), tz=timezone.utc),
        attributes=attributes,
        raw=payload,
        token_id=token_id or None,
        issued_at=datetime.fromtimestamp(float(issued), tz=timezone.utc)
        if issued is not None
        else None,
    )


def verify_token(token: str, secret: Any = None, **options: Any) -> TokenClaims:
    """Verify one token; a shortcut for ``TokenVerifier(secret, **options).verify(token)``."""
    return TokenVerifier(secret, **options).verify(token)
