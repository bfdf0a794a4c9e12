"""RS256 verification of Wix webhook tokens.

Wix signs webhooks with the app's private key and publishes no JWKS, so the public PEM
from the app dashboard is configured once. Only RS256 is accepted: accepting the
token's own `alg` would let an attacker pick HS256 and "sign" with the public key.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class TokenError(Exception):
    """The token is not acceptable; `reason` is a stable machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class _Header(msgspec.Struct):
    alg: str
    typ: str | None = None
    kid: str | None = None


class _Claims(msgspec.Struct):
    data: str
    exp: float | None = None
    iat: float | None = None
    nbf: float | None = None


def load_public_key(value: str) -> rsa.RSAPublicKey:
    """Accept PEM text or a path to a PEM file; fail with a clear message otherwise."""
    text = value.strip()
    if not text.startswith("-----BEGIN"):
        path = Path(text)
        try:
            text = path.read_text(encoding="ascii")
        except OSError as e:
            raise ValueError(f"cannot read public key file {path}: {e.strerror}") from None
    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, TypeError) as e:
        raise ValueError(f"not a PEM public key: {e}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("public key is not an RSA key (Wix signs with RS256)")
    return key


def _b64(segment: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed", f"{what} is not base64url") from None


class JwtVerifier:
    def __init__(
        self,
        public_key: rsa.RSAPublicKey,
        *,
        leeway: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = public_key
        self._leeway = leeway
        self._clock = clock

    def verify(self, token: bytes | str) -> str:
        """Return the claims' `data` string (layer A) of a valid token, else raise TokenError."""
        if isinstance(token, bytes):
            try:
                token = token.decode("ascii")
            except UnicodeDecodeError:
                raise TokenError("malformed", "body is not a compact JWS (non-ASCII bytes)") from None
        parts = token.strip().split(".")
        if len(parts) != 3 or not all(parts[:2]):
            raise TokenError("malformed", "body is not a compact JWS (want header.payload.signature)")
        head_b, body_b, sig_b = parts
        try:
            header = msgspec.json.decode(_b64(head_b, "header"), type=_Header)
        except msgspec.DecodeError as e:
            raise TokenError("malformed", f"JWS header: {e}") from None
        if header.alg != "RS256":
            raise TokenError("bad_algorithm", f"algorithm {header.alg!r} refused; only RS256 is accepted")
        signature = _b64(sig_b, "signature")
        try:
            self._key.verify(
                signature, f"{head_b}.{body_b}".encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise TokenError("bad_signature", "signature does not match the configured public key") from None
        try:
            claims = msgspec.json.decode(_b64(body_b, "payload"), type=_Claims)
        except msgspec.DecodeError as e:
            raise TokenError("malformed", f"JWT claims: {e}") from None
        now = self._clock()
        if claims.exp is not None and now > claims.exp + self._leeway:
            raise TokenError("expired", f"token expired {int(now - claims.exp)} s ago")
        if claims.nbf is not None and now + self._leeway < claims.nbf:
            raise TokenError("not_yet_valid", "token not valid yet (nbf in the future)")
        return claims.data


def decode_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as e:
        raise TokenError("malformed", f"{what} is not JSON: {e}") from None
    if not isinstance(value, dict):
        raise TokenError("malformed", f"{what} is not a JSON object")
    return value
