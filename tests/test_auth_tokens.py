"""Tokens: mint, verify, expiry and leeway, key rotation, RS256/ES256, hostile tokens."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from meshroom import Access, AuthenticatePayload, AuthenticationError, CloseCode
from meshroom.auth import Grant, JwtAuth, TokenVerifier, mint_token, verify_token

SECRET = "correct horse battery staple 0123456789"
OTHER = "another secret that is long enough 9876543210"
GRANTS = [Grant("team", ["notes/*"], read_only=True)]


def _refused(token: str, **options) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as info:
        TokenVerifier(SECRET, **options).verify(token)
    assert info.value.code == CloseCode.UNAUTHENTICATED
    return info.value


def test_roundtrip_carries_identity_grants_and_attributes():
    token = mint_token(
        secret=SECRET,
        grants=GRANTS,
        participant_id="ann-1",
        name="Ann",
        kind="agent",
        attributes={"color": "#f80"},
    )
    claims = verify_token(token, SECRET)
    assert (claims.participant_id, claims.name, claims.kind) == ("ann-1", "Ann", "agent")
    assert claims.grants == tuple(GRANTS)
    assert claims.attributes == {"color": "#f80"}
    assert claims.expires_at.timestamp() == pytest.approx(time.time() + 3600, abs=5)
    assert claims.access_for("team", "notes/a.md") == Access(
        "ann-1", "Ann", "agent", read_only=True, attributes={"color": "#f80"}
    )
    assert claims.access_for("team", "") is not None  # the room document
    assert claims.access_for("team", "budget.md") is None
    assert claims.access_for("other", "notes/a.md") is None


def test_random_participant_id_when_omitted():
    first = verify_token(mint_token(secret=SECRET, grants=GRANTS), SECRET)
    second = verify_token(mint_token(secret=SECRET, grants=GRANTS), SECRET)
    assert first.participant_id and first.participant_id != second.participant_id


def test_expired_token_refused_and_leeway_tolerates_skew():
    now = time.time()
    # Expired 20 s ago: inside the default 30 s leeway, outside a zero leeway.
    token = mint_token(secret=SECRET, grants=GRANTS, now=now - 80, expires_in=60)
    assert verify_token(token, SECRET).name == ""
    assert _refused(token, leeway=0).reason == "token expired"
    # Expired two minutes ago: refused even with leeway.
    old = mint_token(secret=SECRET, grants=GRANTS, now=now - 180, expires_in=60)
    assert _refused(old).reason == "token expired"


def test_issuer_clock_ahead_is_tolerated_within_leeway():
    ahead = mint_token(secret=SECRET, grants=GRANTS, now=time.time() + 20)
    assert verify_token(ahead, SECRET).grants == tuple(GRANTS)
    far = mint_token(secret=SECRET, grants=GRANTS, now=time.time() + 600)
    assert _refused(far).reason == "token not yet valid"
    later = mint_token(secret=SECRET, grants=GRANTS, not_before=600)
    assert _refused(later).reason == "token not yet valid"


def test_key_rotation_accepts_both_secrets_and_kid_picks_one():
    old = mint_token(secret=OTHER, grants=GRANTS, name="old")
    new = mint_token(secret=SECRET, grants=GRANTS, name="new")
    rotating = TokenVerifier([SECRET, OTHER])
    assert rotating.verify(old).name == "old"
    assert rotating.verify(new).name == "new"
    # After rotation ends, the retired secret no longer verifies.
    assert _refused(old).reason == "token signature is not valid"
    by_id = TokenVerifier({"2026-10": OTHER, "2026-11": SECRET})
    tagged = mint_token(secret=SECRET, grants=GRANTS, key_id="2026-11", name="k")
    assert by_id.verify(tagged).name == "k"
    # A kid the server does not know falls back to trying every key.
    stray = mint_token(secret=OTHER, grants=GRANTS, key_id="unknown", name="s")
    assert by_id.verify(stray).name == "s"


def test_bad_signature_and_tampered_payload_refused():
    assert _refused(mint_token(secret=OTHER, grants=GRANTS)).reason == (
        "token signature is not valid"
    )
    header, payload, signature = mint_token(secret=SECRET, grants=GRANTS).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["grants"][0]["mode"] = "read-write"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert _refused(f"{header}.{forged}.{signature}").reason == "token signature is not valid"


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "....", "eyJ0.eyJ0.x", "\x00" * 40])
def test_malformed_tokens_refused(token):
    reason = _refused(token).reason
    assert reason in ("missing token", "malformed token") or "not accepted" in reason


def test_oversized_token_refused_before_parsing():
    huge = mint_token(secret=SECRET, grants=[Grant(f"room-{i}") for i in range(400)])
    assert len(huge) > 8 * 1024
    assert _refused(huge).reason.startswith("token longer than")


def test_alg_none_and_unlisted_algorithms_refused():
    unsigned = jwt.encode(
        {"sub": "x", "exp": int(time.time()) + 60, "grants": []}, None, algorithm="none"
    )
    assert "not accepted" in _refused(unsigned).reason
    hs512 = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, SECRET * 2, algorithm="HS512")
    assert "not accepted" in _refused(hs512).reason


def test_required_claims_and_claim_shapes():
    no_exp = jwt.encode({"sub": "x", "grants": []}, SECRET, algorithm="HS256")
    assert _refused(no_exp).reason == "token lacks a required claim"
    no_sub = jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    assert _refused(no_sub).reason == "token lacks a required claim"
    bad_grants = jwt.encode(
        {"sub": "x", "exp": int(time.time()) + 60, "grants": [{"room": "", "mode": "rw"}]},
        SECRET,
        algorithm="HS256",
    )
    assert _refused(bad_grants).reason.startswith("token grants malformed")
    bad_kind = jwt.encode(
        {"sub": "x", "exp": int(time.time()) + 60, "kind": "robot"}, SECRET, algorithm="HS256"
    )
    assert "kind" in _refused(bad_kind).reason


def _pem(private) -> tuple[bytes, bytes]:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def test_rs256_and_es256_public_keys():
    rsa_private, rsa_public = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    ec_private, ec_public = _pem(ec.generate_private_key(ec.SECP256R1()))
    verifier = TokenVerifier(public_key=[rsa_public, ec_public])
    rs = mint_token(private_key=rsa_private, grants=GRANTS, name="rs")
    es = mint_token(private_key=ec_private, algorithm="ES256", grants=GRANTS, name="es")
    assert verifier.verify(rs).name == "rs"
    assert verifier.verify(es).name == "es"
    # Algorithm confusion: an HS256 token "signed" with the public key text is refused.
    confused = jwt.api_jws.PyJWS()
    confused._algorithms["HS256"].prepare_key = lambda key: key  # sign with PEM as secret
    forged = confused.encode(
        json.dumps({"sub": "x", "exp": int(time.time()) + 60}).encode(),
        rsa_public,
        algorithm="HS256",
    )
    with pytest.raises(AuthenticationError) as info:
        verifier.verify(forged)
    assert "not accepted" in info.value.reason
    # Even when HS256 is accepted, a public key is never used as an HMAC secret.
    with pytest.raises(AuthenticationError) as info:
        TokenVerifier(SECRET, public_key=rsa_public).verify(forged)
    assert info.value.reason == "token signature is not valid"


def test_mint_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 32 bytes"):
        mint_token(secret="short", grants=GRANTS)
    with pytest.raises(ValueError, match="exactly one"):
        mint_token(grants=GRANTS)
    with pytest.raises(ValueError, match="at least one grant"):
        mint_token(secret=SECRET, grants=[])
    with pytest.raises(ValueError, match="kind"):
        mint_token(secret=SECRET, grants=GRANTS, kind="robot")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        mint_token(secret=SECRET, grants=GRANTS, expires_in=0)
    with pytest.raises(ValueError, match="does not sign with a secret"):
        mint_token(secret=SECRET, grants=GRANTS, algorithm="RS256")
    with pytest.raises(ValueError, match="at least 32 bytes"):
        TokenVerifier("short")
    with pytest.raises(ValueError, match="at least one"):
        TokenVerifier()
    with pytest.raises(ValueError, match="not accepted"):
        TokenVerifier(SECRET, algorithms=["none"])


def _payload(token: str | None, room: str = "team", path: str = "notes/a.md"):
    return AuthenticatePayload(room=room, path=path, token=token, headers={}, client="1.2.3.4:5")


@pytest.mark.anyio
async def test_extension_maps_grants_to_access_and_refusals_to_codes():
    auth = JwtAuth(SECRET)
    assert auth.requires_token
    token = mint_token(secret=SECRET, grants=GRANTS, participant_id="ann", name="Ann")
    access = await auth.on_authenticate(_payload(token))
    # open connections close when the token expires (plus the leeway), unless refreshed
    assert access.expires_at == pytest.approx(time.time() + 3600 + 30, abs=5)
    assert access == Access("ann", "Ann", "person", read_only=True, expires_at=access.expires_at)
    for bad, code in [
        (_payload(None), CloseCode.UNAUTHENTICATED),
        (_payload("junk"), CloseCode.UNAUTHENTICATED),
        (_payload(mint_token(secret=OTHER, grants=GRANTS)), CloseCode.UNAUTHENTICATED),
        (_payload(token, room="other"), CloseCode.FORBIDDEN),
        (_payload(token, path="budget.md"), CloseCode.FORBIDDEN),
    ]:
        with pytest.raises(AuthenticationError) as info:
            await auth.on_authenticate(bad)
        assert info.value.code == code
        assert len(info.value.reason.encode()) <= 123


@pytest.mark.anyio
async def test_authenticate_callback_decides_instead_of_grants():
    seen = []

    async def decide(payload, claims):
        seen.append((payload.room, claims.participant_id))
        if claims.attributes.get("staff") == "yes":
            return Access(claims.participant_id, claims.name, read_only=False)
        return None

    auth = JwtAuth(SECRET, authenticate=decide)
    staff = mint_token(
        secret=SECRET, grants=GRANTS, participant_id="s", attributes={"staff": "yes"}
    )
    guest = mint_token(secret=SECRET, grants=GRANTS, participant_id="g")
    assert (await auth.on_authenticate(_payload(staff, room="anywhere"))).read_only is False
    with pytest.raises(AuthenticationError) as info:
        await auth.on_authenticate(_payload(guest))
    assert info.value.code == CloseCode.FORBIDDEN
    assert seen == [("anywhere", "s"), ("team", "g")]
    # The callback never sees a token that failed verification.
    with pytest.raises(AuthenticationError):
        await auth.on_authenticate(_payload(mint_token(secret=OTHER, grants=GRANTS)))
    assert len(seen) == 2


def test_redact_tokens_in_log_text():
    from meshroom.auth import redact

    line = '127.0.0.1:5 - "WebSocket /team/a.md?name=x&token=eyJ.a-b_c.d" [accepted]'
    assert redact(line) == '127.0.0.1:5 - "WebSocket /team/a.md?name=x&token=[redacted]" [accepted]'
    assert redact("Authorization: Bearer eyJ.x.y") == "Authorization: Bearer [redacted]"
    assert redact("/team?tokens=1&mytoken=2") == "/team?tokens=1&mytoken=2"
