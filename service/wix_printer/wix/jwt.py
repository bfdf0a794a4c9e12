"""RS256 verification of Wix webhook tokens.

Wix signs webhooks with the app's private key and publishes no JWKS, so the public PEM
from the app dashboard is configured once. Only RS256 is accepted: accepting the
token's own `alg` would let an attacker pick HS256 and "sign" with the public key.

The key is parsed here (a few lines of DER) and the signature checked by `cryptography`
(OpenSSL), imported on the first webhook: it costs about 7 MB of resident memory, which a
box that only polls Wix never needs, and checking with OpenSSL takes about 0.1 ms where
Python integers took 0.5 ms (measured in bench/BENCHMARKS.md, section 9).
"""

from __future__ import annotations

import base64
import binascii
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

# OID 1.2.840.113549.1.1.1 (rsaEncryption), DER-encoded with its tag and length.
_RSA_ENCRYPTION_OID = bytes.fromhex("06092a864886f70d010101")
# Wix's keys are 2048 bits; anything below this is forgeable with public means.
MIN_KEY_BITS = 2048


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


@dataclass(frozen=True, slots=True)
class RsaPublicKey:
    n: int
    e: int

    @property
    def size(self) -> int:
        """Modulus length in bytes: every valid signature has exactly this length."""
        return (self.n.bit_length() + 7) // 8

    def verify_rs256(self, signature: bytes, message: bytes) -> bool:
        if len(signature) != self.size:
            return False
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            _openssl_key(self.n, self.e).verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True


@functools.lru_cache(maxsize=4)
def _openssl_key(n: int, e: int) -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.RSAPublicNumbers(e, n).public_key()


class _Der:
    """Just enough DER to read an RSA public key; every length is checked against the input."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, tag: int, what: str) -> bytes:
        d, i = self.data, self.pos
        if i + 2 > len(d) or d[i] != tag:
            raise ValueError(f"not a PEM public key: expected {what}")
        length = d[i + 1]
        i += 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or i + count > len(d):
                raise ValueError(f"not a PEM public key: bad length in {what}")
            length = int.from_bytes(d[i:i + count], "big")
            i += count
        if i + length > len(d):
            raise ValueError(f"not a PEM public key: {what} is truncated")
        self.pos = i + length
        return d[i:i + length]

    def integer(self, what: str) -> int:
        raw = self.read(0x02, what)
        if not raw or raw[0] & 0x80:
            raise ValueError(f"not a PEM public key: {what} is not a positive integer")
        return int.from_bytes(raw, "big")

    def done(self, what: str) -> None:
        if self.pos != len(self.data):
            raise ValueError(f"not a PEM public key: trailing bytes after {what}")


def _rsa_numbers(pkcs1: bytes) -> RsaPublicKey:
    outer = _Der(pkcs1)
    seq = _Der(outer.read(0x30, "RSAPublicKey sequence"))
    outer.done("RSAPublicKey")
    n = seq.integer("modulus")
    e = seq.integer("public exponent")
    seq.done("RSAPublicKey")
    return RsaPublicKey(n, e)


def parse_public_key_pem(text: str) -> RsaPublicKey:
    """An RSA key from `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo, what Wix shows) or
    `BEGIN RSA PUBLIC KEY` (PKCS#1) PEM text."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN ") or not lines[-1].startswith("-----END "):
        raise ValueError("not a PEM public key: want -----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----")
    label = lines[0][len("-----BEGIN "):].rstrip("-").strip()
    if label not in ("PUBLIC KEY", "RSA PUBLIC KEY"):
        if "PRIVATE" in label:
            raise ValueError(f"this is a private key ({label}); configure the PUBLIC key only")
        raise ValueError(f"not a PEM public key: found {label!r}")
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not a PEM public key: the body is not base64") from None
    if label == "RSA PUBLIC KEY":
        key = _rsa_numbers(der)
    else:
        outer = _Der(der)
        spki = _Der(outer.read(0x30, "SubjectPublicKeyInfo sequence"))
        outer.done("SubjectPublicKeyInfo")
        algorithm = _Der(spki.read(0x30, "AlgorithmIdentifier"))
        if not algorithm.data.startswith(_RSA_ENCRYPTION_OID):
            raise ValueError("public key is not an RSA key (Wix signs with RS256)")
        bits = spki.read(0x03, "subjectPublicKey bit string")
        spki.done("SubjectPublicKeyInfo")
        if not bits or bits[0] != 0:
            raise ValueError("not a PEM public key: bad bit string")
        key = _rsa_numbers(bits[1:])
    if key.n.bit_length() < MIN_KEY_BITS:
        raise ValueError(f"RSA key of {key.n.bit_length()} bits refused: at least {MIN_KEY_BITS} bits")
    if key.e < 3 or key.e % 2 == 0:
        raise ValueError(f"RSA public exponent {key.e} is not valid")
    return key


def load_public_key(value: str) -> RsaPublicKey:
    """Accept PEM text or a path to a PEM file; fail with a clear message otherwise."""
    text = value.strip()
    if not text.startswith("-----BEGIN"):
        path = Path(text)
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as e:
            why = e.strerror if isinstance(e, OSError) else "not ASCII text"
            raise ValueError(f"cannot read public key file {path}: {why}") from None
    return parse_public_key_pem(text)


def _b64(segment: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed", f"{what} is not base64url") from None


class JwtVerifier:
    def __init__(
        self,
        public_key: RsaPublicKey,
        *,
        leeway: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = public_key
        self._leeway = leeway
        self._clock = clock

    def prepare(self) -> None:
        """Load the signature checker now instead of on the first webhook."""
        _openssl_key(self._key.n, self._key.e)

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
        if not self._key.verify_rs256(signature, f"{head_b}.{body_b}".encode("ascii")):
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
