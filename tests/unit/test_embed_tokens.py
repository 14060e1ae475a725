"""Viewer tokens of embedded dashboards, checked without a server: what verifies, and why each refusal is refused."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey, RSAKey

from classpulse_api.embed import EmbedIssuerCreate, EmbedRefused, import_key, unverified_issuer, verify_claims

pytestmark = pytest.mark.unit


def issuer_of(platform, **fields) -> EmbedIssuerCreate:
    return EmbedIssuerCreate(**{"issuer": platform.issuer, "algorithm": "Ed25519", "key": platform.public_pem, **fields})


def refusal(token: str, issuer: EmbedIssuerCreate, max_lifetime_s: int = 900) -> EmbedRefused:
    with pytest.raises(EmbedRefused) as caught:
        verify_claims(token, issuer, "classpulse", max_lifetime_s, time.time())
    return caught.value


def test_a_token_signed_by_the_registered_key_verifies(platform) -> None:
    token = platform.mint("room-1")
    claims = verify_claims(token, issuer_of(platform), "classpulse", 900, time.time())
    assert claims["class_id"] == "room-1" and claims["iss"] == platform.issuer
    assert unverified_issuer(token) == platform.issuer


def test_the_legacy_eddsa_name_verifies_too(platform) -> None:
    now = int(time.time())
    payload = {"iss": platform.issuer, "aud": "classpulse", "class_id": "c", "iat": now, "exp": now + 60, "jti": "j"}
    with pytest.warns(UserWarning, match="deprecated"):  # joserfc's SecurityWarning: the name is old, not the algorithm
        token = jwt.encode({"alg": "EdDSA"}, payload, platform.signing_key, algorithms=["EdDSA"])
    assert verify_claims(token, issuer_of(platform, algorithm="EdDSA"), "classpulse", 900, time.time())["jti"] == "j"


@pytest.mark.parametrize(
    ("mint", "reason"),
    [
        (lambda p: p.mint("c", lifetime_s=60, issued_ago_s=200), "expired"),
        (lambda p: p.mint("c", lifetime_s=901), "the most accepted is 900 s"),
        (lambda p: p.mint("c", aud="someone-else"), "aud"),
        (lambda p: p.mint("c", jti=None), "jti"),
        (lambda p: p.mint(None), "names no class"),
        (lambda p: p.mint("c", iat=int(time.time()) + 600, exp=int(time.time()) + 700), "issued in the future"),
        (lambda p: p.mint("c", signing_key=OKPKey.generate_key("Ed25519")), "signature does not verify"),
    ],
    ids=["expired", "too-long-lived", "foreign-audience", "no-jti", "no-class", "future-iat", "foreign-key"],
)
def test_refusals_are_401_and_say_why(platform, mint, reason: str) -> None:
    refused = refusal(mint(platform), issuer_of(platform))
    assert refused.status == 401
    assert reason in refused.message


def test_a_tampered_payload_does_not_verify(platform) -> None:
    header, payload, signature = platform.mint("room-1").split(".")
    forged = platform.mint("room-2").split(".")[1]
    refused = refusal(f"{header}.{forged}.{signature}", issuer_of(platform))
    assert refused.status == 401 and "signature" in refused.message


def test_a_deployment_may_shorten_the_lifetime(platform) -> None:
    assert "the most accepted is 120 s" in refusal(platform.mint("c", lifetime_s=300), issuer_of(platform), 120).message


def test_garbage_is_malformed() -> None:
    with pytest.raises(EmbedRefused, match="malformed"):
        unverified_issuer("not.a.jwt")


def test_keys_are_checked_when_registered(platform) -> None:
    assert import_key("Ed25519", platform.public_pem).is_private is False
    with pytest.raises(ValueError, match="public key only"):
        import_key("Ed25519", platform.signing_key.as_pem(private=True).decode())
    with pytest.raises(ValueError, match="not a RS256 public key"):
        import_key("RS256", platform.public_pem)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        import_key("HS256", "short")
    assert import_key("RS256", RSAKey.generate_key(2048).as_pem(private=False).decode()).is_private is False
