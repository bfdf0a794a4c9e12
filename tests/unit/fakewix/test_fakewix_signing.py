"""Webhook tokens from the fake: real RS256 that `cryptography` verifies, and the forgeries."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from wix_printer.fakewix import (
    BAD_KINDS,
    FORMS,
    FakeWix,
    WebhookSigner,
    b64url_decode,
    decode_unverified,
    generate_orders,
)
from wix_printer.fakewix._sample import sample_order
from wix_printer.wix.model import order_from_raw

REF = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "orders" / "delivery-berlin.json"


def rs256_valid(token: str, public_pem: str) -> bool:
    head, body, sig = token.split(".")
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(b64url_decode(sig), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def unwrap(token: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(claims, layer A, layer B, order) the way a receiver must unwrap them."""
    _head, claims = decode_unverified(token)
    a = json.loads(claims["data"])
    b = json.loads(a["data"])
    if "createdEvent" in b:
        ev = b["createdEvent"]
        order = ev["entity"] if "entity" in ev else json.loads(ev["entityAsJson"])
    elif "updatedEvent" in b:
        ev = b["updatedEvent"]
        order = ev["currentEntity"] if "currentEntity" in ev else json.loads(ev["currentEntityAsJson"])
    else:
        ev = b["actionEvent"]
        order = ev["body"]["order"] if "body" in ev else json.loads(ev["bodyAsJson"])["order"]
    return claims, a, b, order


def test_embedded_sample_is_the_reference_order() -> None:
    if not REF.exists():
        pytest.skip("shared reference orders not present")
    assert sample_order() == json.loads(REF.read_text(encoding="utf-8"))


@pytest.mark.parametrize("form", FORMS)
def test_every_form_verifies_and_unwraps_to_the_order(signer: WebhookSigner, form: Any) -> None:
    order = sample_order()
    token = signer.sign_webhook(order, slug="approved", form=form, instance_id="site-7", seq=4,
                                event_id="evt-1")
    head, _ = decode_unverified(token)
    assert head["alg"] == "RS256"
    assert rs256_valid(token, signer.public_key_pem())
    claims, a, b, got = unwrap(token)
    assert got == order
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 60
    assert a["eventType"] == "wix.ecom.v1.order_approved"
    assert a["instanceId"] == "site-7"
    assert isinstance(a["identity"], str)
    assert b == b | {"id": "evt-1", "entityFqdn": "wix.ecom.v1.order", "slug": "approved",
                     "entityId": order["id"], "eventTime": order["updatedDate"],
                     "entityEventSequence": "4"}


def test_updated_form_carries_modified_fields(signer: WebhookSigner) -> None:
    order = sample_order()
    token = signer.sign_webhook(order, slug="updated", form="updated",
                                modified_fields={"buyerNote": "alt"})
    _, a, b, _ = unwrap(token)
    assert a["eventType"] == "wix.ecom.v1.order_updated"
    assert b["updatedEvent"]["modifiedFields"] == {"buyerNote": "alt"}


def test_non_ascii_survives_the_three_layers(signer: WebhookSigner) -> None:
    order = sample_order()
    _, _, _, got = unwrap(signer.sign_webhook(order, form="string"))
    assert got["buyerNote"] == order["buyerNote"]
    assert "🍴" in got["buyerNote"]
    assert order_from_raw(got).number == "10234"


def test_fake_defaults_its_instance_id(signer: WebhookSigner) -> None:
    fake = FakeWix(instance_id="inst-9", signer=signer)
    order = generate_orders(1, datetime(2026, 3, 14, 11, 0, tzinfo=UTC), seed=1)[0]
    _, a, _, _ = unwrap(fake.sign_webhook(order))
    assert a["instanceId"] == "inst-9"


def test_hs256_token_is_the_alg_confusion_attack(signer: WebhookSigner) -> None:
    token = signer.bad_token("hs256", sample_order())
    head, body, sig = token.split(".")
    assert decode_unverified(token)[0]["alg"] == "HS256"
    assert not rs256_valid(token, signer.public_key_pem())
    # A verifier that trusts the header and keys HMAC with the PEM it holds would accept it.
    expected = hmac.new(signer.public_key_pem().encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert b64url_decode(sig) == expected


def test_none_token_is_unsigned(signer: WebhookSigner) -> None:
    token = signer.bad_token("none", sample_order())
    assert token.endswith(".")
    assert decode_unverified(token)[0]["alg"] == "none"


def test_tampered_token_fails_verification_and_differs(signer: WebhookSigner) -> None:
    order = sample_order()
    token = signer.bad_token("tampered", order)
    assert not rs256_valid(token, signer.public_key_pem())
    _, a, b, _ = unwrap(token)
    assert a["instanceId"] == "attacker-site"
    assert b["entityId"] != order["id"]


def test_expired_token_is_validly_signed_but_expired(signer: WebhookSigner) -> None:
    token = signer.bad_token("expired", sample_order())
    assert rs256_valid(token, signer.public_key_pem())
    assert decode_unverified(token)[1]["exp"] < time.time() - 3000


@pytest.mark.parametrize("kind", ["wrong_key", "bad_signature"])
def test_wrong_key_and_flipped_signature_fail(signer: WebhookSigner, kind: Any) -> None:
    token = signer.bad_token(kind, sample_order())
    assert decode_unverified(token)[0]["alg"] == "RS256"
    assert not rs256_valid(token, signer.public_key_pem())


def test_every_bad_kind_is_rejected_by_a_strict_rs256_check(signer: WebhookSigner) -> None:
    for kind in BAD_KINDS:
        token = signer.bad_token(kind, sample_order())
        head, claims = decode_unverified(token)
        ok = head["alg"] == "RS256" and rs256_valid(token, signer.public_key_pem()) \
            and claims["exp"] > time.time()
        assert not ok, kind


def test_keys_persist_in_a_folder_with_private_mode(tmp_path: Path) -> None:
    first = WebhookSigner.from_dir(tmp_path / "keys")
    second = WebhookSigner.from_dir(tmp_path / "keys")
    assert first.public_key_pem() == second.public_key_pem()
    assert (tmp_path / "keys" / "wix.pub.pem").read_text() == first.public_key_pem()
    mode = stat.S_IMODE((tmp_path / "keys" / "wix.key").stat().st_mode)
    assert mode == 0o600
    token = second.sign_webhook(sample_order())
    assert rs256_valid(token, first.public_key_pem())


def test_unknown_form_is_an_error(signer: WebhookSigner) -> None:
    with pytest.raises(ValueError, match="unknown envelope form"):
        signer.sign_webhook(sample_order(), form="xml")  # type: ignore[arg-type]
