"""CDP JWTs: fresh per request, the claims CDP checks, both key kinds, verified with the public key."""

from __future__ import annotations

import base64

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from x402_mcp.errors import ConfigurationError
from x402_mcp.settlement.cdp import CDP_FACILITATOR_URL, CdpAuth, cdp_facilitator

NOW = 1_760_000_000
KEY_ID = "organizations/org/apiKeys/key-1"


def _ec_pem() -> tuple[str, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()).decode()
    return pem, key.public_key()


def _ed25519_secret() -> tuple[str, object]:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes_raw() + key.public_key().public_bytes_raw()
    return base64.b64encode(raw).decode(), key.public_key()


@pytest.mark.parametrize(("kind", "algorithm"), [("ec", "ES256"), ("ed25519", "EdDSA")])
def test_each_request_gets_a_fresh_token_with_the_claims_cdp_checks(kind: str, algorithm: str) -> None:
    secret, public = _ec_pem() if kind == "ec" else _ed25519_secret()
    auth = CdpAuth(KEY_ID, secret, clock=lambda: NOW)
    url = f"{CDP_FACILITATOR_URL}/verify"

    first = auth.headers("verify", "POST", url)["Authorization"].removeprefix("Bearer ")
    second = auth.headers("verify", "POST", url)["Authorization"].removeprefix("Bearer ")

    header = jwt.get_unverified_header(first)
    assert (header["alg"], header["kid"], header["typ"]) == (algorithm, KEY_ID, "JWT")
    assert header["nonce"] != jwt.get_unverified_header(second)["nonce"], "a fresh nonce per request"
    claims = jwt.decode(
        first, public, algorithms=[algorithm], options={"verify_nbf": False, "verify_exp": False}
    )  # type: ignore[arg-type]
    assert claims == {
        "iss": "cdp",
        "sub": KEY_ID,
        "nbf": NOW,
        "exp": NOW + 120,
        "uris": ["POST api.cdp.coinbase.com/platform/v2/x402/verify"],
    }
    settle = auth.token("POST", f"{CDP_FACILITATOR_URL}/settle")
    assert jwt.decode(settle, options={"verify_signature": False})["uris"] == [
        "POST api.cdp.coinbase.com/platform/v2/x402/settle"
    ]


def test_from_env_reads_both_variables_and_never_shows_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    secret, _ = _ec_pem()
    monkeypatch.setenv("CDP_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("CDP_API_KEY_SECRET", secret.replace("\n", "\\n"))  # as .env files store it
    auth = CdpAuth.from_env()
    assert auth.algorithm == "ES256"
    assert "PRIVATE" not in repr(auth) and KEY_ID in repr(auth)
    facilitator = cdp_facilitator("base")
    assert facilitator.url == CDP_FACILITATOR_URL

    monkeypatch.delenv("CDP_API_KEY_SECRET")
    with pytest.raises(ConfigurationError, match="needs CDP_API_KEY_SECRET"):
        CdpAuth.from_env()


@pytest.mark.parametrize(
    ("secret", "needle"),
    [
        ("not a key at all!", "neither a PEM EC key nor base64"),
        (base64.b64encode(b"x" * 32).decode(), "must decode to 64 bytes"),
        (base64.b64encode(b"x" * 64).decode(), "public half does not match"),
        ("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", "not a readable EC key"),
    ],
)
def test_bad_secrets_are_configuration_errors_that_do_not_echo_them(secret: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle) as caught:
        CdpAuth(KEY_ID, secret)
    assert secret.strip() not in str(caught.value)
