"""meshroom.auth: signed tokens (JWT) that grant rooms and document paths.

Mint a token with `mint_token` (or ``meshroom token``), hand it to a client,
and run the server with `JwtAuth`; the server enforces read-only grants on
every message.
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
    "TokenClaims",
    "TokenVerifier",
    "match_pattern",
    "mint_token",
    "redact",
    "resolve_mode",
    "verify_token",
]
