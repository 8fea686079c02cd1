"""Signing and verification keys: HMAC secrets and public keys, with rotation.

Keys come as one value, a list (rotation: every key is tried) or a mapping
from key id to key (the token's ``kid`` header picks one; unknown ids fall back
to trying every key). HMAC secrets are only ever used with ``HS*`` algorithms and
public keys only with ``RS*``/``PS*``/``ES*``/``EdDSA``, so a token can never
make the server verify an HMAC against a public key it knows (algorithm confusion).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["KeySet", "SecretLike", "check_secret", "family_of"]

#: An HMAC secret (str is encoded as UTF-8).
SecretLike = str | bytes
#: A public or private key: PEM text/bytes, or a `cryptography` key object.
KeyLike = Any

Family = Literal["hmac", "asymmetric"]

#: HMAC secrets shorter than this are refused: RFC 7518 §3.2 asks for a key at
#: least as long as the hash output (32 bytes for HS256).
MIN_SECRET_BYTES = 32

_ASYMMETRIC_PREFIXES = ("RS", "PS", "ES", "EdDSA", "Ed25519", "Ed448")


def family_of(algorithm: str) -> Family | None:
    """Which kind of key `algorithm` needs, or None for an algorithm we never accept."""
    if algorithm.startswith("HS"):
        return "hmac"
    if algorithm.startswith(_ASYMMETRIC_PREFIXES):
        return "asymmetric"
    return None


def check_secret(secret: object) -> bytes:
    """Validate an HMAC secret and return it as bytes.

    Raises:
        ValueError: the secret is not str/bytes or shorter than 32 bytes.
    """
    if isinstance(secret, str):
        raw = secret.encode()
    elif isinstance(secret, bytes):
        raw = secret
    else:
        raise ValueError(f"a secret must be str or bytes, not {type(secret).__name__}")
    if len(raw) < MIN_SECRET_BYTES:
        raise ValueError(
            f"a secret must be at least {MIN_SECRET_BYTES} bytes long (got {len(raw)}); "
            "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return raw


@dataclass(frozen=True)
class _Key:
    kid: str | None
    key: Any
    family: Family


def _entries(keys: object, what: str) -> list[tuple[str | None, Any]]:
    if keys is None:
        return []
    if isinstance(keys, Mapping):
        out: list[tuple[str | None, Any]] = []
        for kid, key in keys.items():
            if not isinstance(kid, str) or not kid:
                raise ValueError(f"{what} ids must be non-empty strings")
            out.append((kid, key))
        return out
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Sequence):
        return [(None, keys)]
    return [(None, key) for key in keys]


class KeySet:
    """The keys a server accepts, grouped by family; tried in order given."""

    def __init__(self, secret: object = None, public_key: object = None) -> None:
        self._keys: list[_Key] = []
        for kid, key in _entries(secret, "secret"):
            self._keys.append(_Key(kid, check_secret(key), "hmac"))
        for kid, key in _entries(public_key, "public key"):
            if isinstance(key, str):
                key = key.encode()
            if isinstance(key, bytes) and not key.strip():
                raise ValueError("a public key must not be empty")
            self._keys.append(_Key(kid, key, "asymmetric"))
        if not self._keys:
            raise ValueError("give at least one secret or public key")

    def families(self) -> set[Family]:
        """The key families present (decides the default algorithms)."""
        return {key.family for key in self._keys}

    def candidates(self, algorithm: str, kid: object) -> list[Any]:
        """Keys to try for a token signed with `algorithm` and header `kid`."""
        family = family_of(algorithm)
        keys = [key for key in self._keys if key.family == family]
        if isinstance(kid, str):
            named = [key for key in keys if key.kid == kid]
            if named:
                return [key.key for key in named]
        return [key.key for key in keys]
