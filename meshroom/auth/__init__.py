"""meshroom.auth: signed tokens (JWT) that grant rooms and document paths.

Mint a token with `mint_token` (or ``meshroom token``), hand it to a client,
and run the server with `JwtAuth`; the server enforces read-only grants on
every message, closes connections when their token expires (unless the client
refreshed it) and when it is revoked (`JwtAuth.revoke`, `RevocationList`,
``meshroom token revoke``).
"""

from __future__ import annotations

from ._extension import AuthenticateCallback as AuthenticateCallback
from ._extension import JwtAuth as JwtAuth
from ._grants import Grant as Grant
from ._grants import GrantMode as GrantMode
from ._grants import match_pattern as match_pattern
from ._grants import resolve_mode as resolve_mode
from ._redact import RedactTokens as RedactTokens
from ._redact import redact as redact
from ._revocations import RevocationList as RevocationList
from ._revocations import RevocationListError as RevocationListError
from ._revocations import Revocations as Revocations
from ._revocations import read_revocations as read_revocations
from ._revocations import revoke_in_file as revoke_in_file
from ._tokens import TokenClaims as TokenClaims
from ._tokens import TokenVerifier as TokenVerifier
from ._tokens import mint_token as mint_token
from ._tokens import verify_token as verify_token

__all__ = [
    "AuthenticateCallback",
    "Grant",
    "GrantMode",
    "JwtAuth",
    "RedactTokens",
    "RevocationList",
    "RevocationListError",
    "Revocations",
    "TokenClaims",
    "TokenVerifier",
    "match_pattern",
    "mint_token",
    "read_revocations",
    "redact",
    "resolve_mode",
    "revoke_in_file",
    "verify_token",
]
