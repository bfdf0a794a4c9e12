"""RS256 as the service checks it: its own PEM/DER parsing (the numbers must match what
`cryptography` reads from the same key), refusals with a reason for every bad key, and
a check that accepts exactly the valid signatures and refuses tampered ones."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from wix_printer.wix.jwt import JwtVerifier, TokenError, load_public_key, parse_public_key_pem

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUB = KEY.public_key()


SPKI = serialization.PublicFormat.SubjectPublicKeyInfo


def pem(key: rsa.RSAPublicKey, fmt: serialization.PublicFormat = SPKI) -> str:
    return key.public_bytes(serialization.Encoding.PEM, fmt).decode()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(claims: dict[str, object], key: rsa.RSAPrivateKey = KEY, alg: str = "RS256") -> str:
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64(sig)}"


def test_spki_and_pkcs1_pem_give_the_same_numbers() -> None:
    nums = PUB.public_numbers()
    for fmt in (serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1):
        key = parse_public_key_pem(pem(PUB, fmt))
        assert (key.n, key.e) == (nums.n, nums.e)


def test_a_token_signed_by_the_key_verifies_and_returns_its_data() -> None:
    v = JwtVerifier(parse_public_key_pem(pem(PUB)), clock=lambda: 1000.0)
    assert v.verify(token({"data": "hello", "exp": 2000})) == "hello"


def test_a_token_signed_by_another_key_is_refused() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    v = JwtVerifier(parse_public_key_pem(pem(PUB)), clock=lambda: 1000.0)
    with pytest.raises(TokenError) as e:
        v.verify(token({"data": "x"}, key=other))
    assert e.value.reason == "bad_signature"


@settings(max_examples=60, deadline=None)
@given(msg=st.binary(max_size=300), flip=st.integers(min_value=0, max_value=255 * 8 + 7))
def test_agrees_with_cryptography_on_valid_and_tampered_signatures(msg: bytes, flip: int) -> None:
    ours = parse_public_key_pem(pem(PUB))
    sig = KEY.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    assert ours.verify_rs256(sig, msg)
    bad = bytearray(sig)
    bad[flip // 8] ^= 1 << (flip % 8)
    try:
        PUB.verify(bytes(bad), msg, padding.PKCS1v15(), hashes.SHA256())
        reference = True
    except InvalidSignature:
        reference = False
    assert ours.verify_rs256(bytes(bad), msg) is reference is False
    assert not ours.verify_rs256(sig, msg + b"!")


def test_signatures_of_the_wrong_length_or_not_below_the_modulus_are_refused() -> None:
    ours = parse_public_key_pem(pem(PUB))
    sig = KEY.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    assert not ours.verify_rs256(sig[1:], b"m")
    assert not ours.verify_rs256(b"\x00" + sig, b"m")
    assert not ours.verify_rs256(ours.n.to_bytes(ours.size, "big"), b"m")
    assert not ours.verify_rs256(b"\xff" * ours.size, b"m")


def test_a_sha1_signature_by_the_right_key_is_refused() -> None:
    # Same key, same padding, other digest: the DigestInfo must match exactly.
    ours = parse_public_key_pem(pem(PUB))
    assert not ours.verify_rs256(KEY.sign(b"m", padding.PKCS1v15(), hashes.SHA1()), b"m")


@pytest.mark.parametrize(("text", "message"), [
    ("", "not a PEM public key"),
    ("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----", "not base64"),
    ("-----BEGIN PUBLIC KEY-----\nMAMCAQE=\n-----END PUBLIC KEY-----", "not a PEM public key"),
    ("-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----", "found 'CERTIFICATE'"),
])
def test_garbage_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_public_key_pem(text)


def test_private_weak_and_non_rsa_keys_are_refused() -> None:
    priv = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()
    with pytest.raises(ValueError, match="private key"):
        parse_public_key_pem(priv)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    with pytest.raises(ValueError, match="1024 bits refused"):
        parse_public_key_pem(pem(weak))
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(ValueError, match="not an RSA key"):
        parse_public_key_pem(pem(ec_key))  # type: ignore[arg-type]


def test_truncated_der_is_refused_not_crashed() -> None:
    der = PUB.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for cut in (1, 10, len(der) // 2, len(der) - 1):
        body = base64.b64encode(der[:cut]).decode()
        with pytest.raises(ValueError, match="not a PEM public key"):
            parse_public_key_pem(f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----")


def test_load_public_key_reads_a_file_and_names_a_missing_one(tmp_path: Path) -> None:
    f = tmp_path / "wix.pem"
    f.write_text(pem(PUB))
    assert load_public_key(str(f)).n == PUB.public_numbers().n
    with pytest.raises(ValueError, match="cannot read public key file"):
        load_public_key(str(tmp_path / "missing.pem"))
