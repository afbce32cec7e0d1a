"""Coinbase Developer Platform (CDP) authentication for its x402 facilitator.

CDP wants a fresh bearer JWT on every request, signed with the API key secret and
bound to one request line: claims `iss: "cdp"`, `sub` = the key id, `nbf`/`exp`
(two minutes), `uris: ["POST api.cdp.coinbase.com/platform/v2/x402/verify"]`;
headers `kid` = the key id and a random `nonce`. Two kinds of secret exist: an EC
key in PEM (ES256) and an Ed25519 key as base64 of 64 bytes (seed, then public
key; EdDSA). The secret is read from the environment, used in memory, never
logged or shown in a repr.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ..core.networks import Network
from ..errors import ConfigurationError
from .facilitator import Endpoint, FacilitatorSettlement

__all__ = ["CDP_FACILITATOR_URL", "CdpAuth", "cdp_facilitator"]

CDP_FACILITATOR_URL = "https://api.cdp.coinbase.com/platform/v2/x402"
JWT_LIFETIME_SECONDS = 120


class CdpAuth:
    """A `FacilitatorAuth` that signs a new CDP JWT for each request.

    Args:
        key_id: the API key id (`CDP_API_KEY_ID`).
        key_secret: the API key secret (`CDP_API_KEY_SECRET`): a PEM EC private
            key, or base64 of a 64-byte Ed25519 key.
        clock: unix time (tests pin it).

    Raises:
        ConfigurationError: when the secret is neither kind of key (the message
            never contains the secret).
    """

    def __init__(self, key_id: str, key_secret: str, *, clock: Callable[[], float] = time.time) -> None:
        if not key_id:
            raise ConfigurationError("the CDP API key id is empty")
        self.key_id = key_id
        self._key, self.algorithm = _load_key(key_secret)
        self._clock = clock

    @classmethod
    def from_env(cls) -> CdpAuth:
        """From `CDP_API_KEY_ID` and `CDP_API_KEY_SECRET`.

        Raises:
            ConfigurationError: naming the variable that is missing.
        """
        key_id = os.environ.get("CDP_API_KEY_ID", "")
        secret = os.environ.get("CDP_API_KEY_SECRET", "")
        missing = [
            name for name, value in (("CDP_API_KEY_ID", key_id), ("CDP_API_KEY_SECRET", secret)) if not value
        ]
        if missing:
            raise ConfigurationError(f"CDP authentication needs {' and '.join(missing)} in the environment")
        # Secrets pasted into .env files often carry literal "\n" for the PEM's newlines.
        return cls(key_id, secret.replace("\\n", "\n"))

    def __repr__(self) -> str:
        return f"CdpAuth(key_id={self.key_id!r}, algorithm={self.algorithm!r})"

    def token(self, method: str, url: str) -> str:
        """A JWT for one request of `method` to `url`, valid for two minutes."""
        parts = urlsplit(url)
        now = int(self._clock())
        claims = {
            "iss": "cdp",
            "sub": self.key_id,
            "nbf": now,
            "exp": now + JWT_LIFETIME_SECONDS,
            "uris": [f"{method.upper()} {parts.netloc}{parts.path}"],
        }
        headers = {"kid": self.key_id, "nonce": secrets.token_hex(16), "typ": "JWT"}
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def headers(self, endpoint: Endpoint, method: str, url: str) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.token(method, url)}"}


def _load_key(secret: str) -> tuple[EllipticCurvePrivateKey | Ed25519PrivateKey, str]:
    text = secret.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError):
            raise ConfigurationError(
                "CDP_API_KEY_SECRET (the CDP API key secret) is a PEM block but not a readable EC key"
            ) from None
        if not isinstance(key, EllipticCurvePrivateKey):
            raise ConfigurationError(
                "CDP_API_KEY_SECRET (the CDP API key secret) in PEM form must be an EC (ES256) key"
            )
        return key, "ES256"
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            "CDP_API_KEY_SECRET (the CDP API key secret) is neither a PEM EC key nor base64 of an Ed25519 key"
        ) from None
    if len(raw) != 64:
        raise ConfigurationError(
            f"CDP_API_KEY_SECRET: a base64 Ed25519 secret must decode to 64 bytes (seed, public key), "
            f"not {len(raw)}"
        )
    key = Ed25519PrivateKey.from_private_bytes(raw[:32])
    if key.public_key().public_bytes_raw() != raw[32:]:
        raise ConfigurationError(
            "CDP_API_KEY_SECRET: the Ed25519 secret's public half does not match its private half"
        )
    return key, "EdDSA"


def cdp_facilitator(network: str | Network = "base", *, auth: CdpAuth | None = None) -> FacilitatorSettlement:
    """Coinbase's facilitator (mainnet and testnet), authenticated from the environment.

    Raises:
        ConfigurationError: when `CDP_API_KEY_ID` / `CDP_API_KEY_SECRET` are missing or invalid.
    """
    return FacilitatorSettlement(CDP_FACILITATOR_URL, network=network, auth=auth or CdpAuth.from_env())
