"""Webhook tokens exactly as Wix builds them, plus the forged ones a receiver must refuse.

A Wix webhook body is a compact JWS (RS256) whose claims wrap the event in two more
JSON-string layers (see shared/reference/wix.md). Signing is done here with the
`cryptography` package so tests exercise the receiver's verification for real.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

Form = Literal["object", "string", "action", "action_string", "updated", "updated_string"]
FORMS: tuple[Form, ...] = ("object", "string", "action", "action_string", "updated", "updated_string")
Alg = Literal["RS256", "HS256", "none"]
BadKind = Literal["hs256", "none", "tampered", "expired", "wrong_key", "bad_signature"]
BAD_KINDS: tuple[BadKind, ...] = ("hs256", "none", "tampered", "expired", "wrong_key", "bad_signature")

PRIVATE_KEY_FILE = "wix.key"
PUBLIC_KEY_FILE = "wix.pub.pem"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(obj: Any) -> str:
    # Compact and non-ASCII kept as UTF-8, as Wix sends it: receivers must cope with umlauts.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def load_private_key(pem: bytes | str) -> rsa.RSAPrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the webhook signing key must be an RSA private key")
    return key


def build_event(
    order: dict[str, Any],
    *,
    slug: str = "approved",
    form: Form = "object",
    instance_id: str = "site-1",
    seq: int = 1,
    event_id: str | None = None,
    event_time: str | None = None,
    modified_fields: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Layer A (with layer B as a JSON string inside): what the JWT's `data` claim holds."""
    inner: dict[str, Any] = {
        "id": event_id or str(uuid.uuid4()),
        "entityFqdn": "wix.ecom.v1.order",
        "slug": slug,
        "entityId": order.get("id", ""),
        "eventTime": event_time or order.get("updatedDate") or _now_iso(),
        "entityEventSequence": str(seq),
    }
    match form:
        case "object":
            inner["createdEvent"] = {"entity": order}
        case "string":
            inner["createdEvent"] = {"entityAsJson": _json(order)}
        case "action":
            inner["actionEvent"] = {"body": {"order": order}}
        case "action_string":
            inner["actionEvent"] = {"bodyAsJson": _json({"order": order})}
        case "updated":
            inner["updatedEvent"] = {"currentEntity": order, "modifiedFields": modified_fields or {}}
        case "updated_string":
            inner["updatedEvent"] = {
                "currentEntityAsJson": _json(order),
                "modifiedFields": modified_fields or {},
            }
        case _:
            raise ValueError(f"unknown envelope form {form!r}; one of {', '.join(FORMS)}")
    return {
        "eventType": f"wix.ecom.v1.order_{slug}",
        "instanceId": instance_id,
        "data": _json(inner),
        "identity": _json({"identityType": "APP"}),
    }


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class WebhookSigner:
    """Holds the app's key pair and signs (or deliberately mis-signs) webhook tokens."""

    def __init__(
        self,
        private_key: rsa.RSAPrivateKey | None = None,
        *,
        kid: str = "fakewix-1",
        now: Callable[[], float] = time.time,
    ) -> None:
        self._key = private_key or generate_private_key()
        self.kid = kid
        self._now = now

    @classmethod
    def from_dir(cls, key_dir: str | os.PathLike[str], **kw: Any) -> WebhookSigner:
        """Load `wix.key` from the folder, or create it there, so restarts keep one key."""
        d = Path(key_dir)
        priv = d / PRIVATE_KEY_FILE
        signer = cls(load_private_key(priv.read_bytes()), **kw) if priv.exists() else cls(**kw)
        signer.write_keys(d)
        return signer

    def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode("ascii")
        )

    def private_key_pem(self) -> str:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def write_keys(self, key_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write `wix.key` (0600) and `wix.pub.pem`; returns (private, public) paths."""
        d = Path(key_dir)
        d.mkdir(parents=True, exist_ok=True)
        priv, pub = d / PRIVATE_KEY_FILE, d / PUBLIC_KEY_FILE
        fd = os.open(priv, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(self.private_key_pem())
        pub.write_text(self.public_key_pem(), encoding="ascii")
        return priv, pub

    def claims(self, event: dict[str, Any], *, exp_in: float = 600) -> dict[str, Any]:
        now = int(self._now())
        return {"data": _json(event), "iat": now, "exp": now + int(exp_in)}

    def sign_claims(self, claims: dict[str, Any], alg: Alg = "RS256") -> str:
        """Compact JWS over `claims`. HS256 and none are the attacks, not options for Wix."""
        header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
        if alg != "none":
            header["kid"] = self.kid
        signing_input = f"{b64url(_json(header).encode())}.{b64url(_json(claims).encode())}"
        msg = signing_input.encode("ascii")
        if alg == "RS256":
            sig = self._key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "HS256":
            # Alg confusion: a verifier that trusts the header would check an HMAC keyed
            # with the public PEM it holds, and the attacker knows that PEM.
            sig = hmac.new(self.public_key_pem().encode("ascii"), msg, hashlib.sha256).digest()
        elif alg == "none":
            sig = b""
        else:
            raise ValueError(f"unsupported alg {alg!r}")
        return f"{signing_input}.{b64url(sig)}"

    def sign_webhook(
        self,
        order: dict[str, Any],
        slug: str = "approved",
        form: Form = "object",
        instance_id: str = "site-1",
        seq: int = 1,
        event_id: str | None = None,
        exp_in: float = 600,
        alg: Alg = "RS256",
        *,
        modified_fields: dict[str, Any] | None = None,
    ) -> str:
        event = build_event(
            order, slug=slug, form=form, instance_id=instance_id, seq=seq,
            event_id=event_id, modified_fields=modified_fields,
        )
        return self.sign_claims(self.claims(event, exp_in=exp_in), alg)

    def bad_token(self, kind: BadKind, order: dict[str, Any], **kw: Any) -> str:
        """A token a correct receiver must reject with 401; `kw` go to `sign_webhook`.

        hs256: HMAC over the public PEM (alg confusion); none: unsigned; tampered: a
        valid token whose payload was changed afterwards; expired: exp an hour ago;
        wrong_key: RS256 by another key; bad_signature: signature bytes flipped.
        """
        match kind:
            case "hs256":
                return self.sign_webhook(order, **{**kw, "alg": "HS256"})
            case "none":
                return self.sign_webhook(order, **{**kw, "alg": "none"})
            case "expired":
                return self.sign_webhook(order, **{**kw, "exp_in": -3600})
            case "wrong_key":
                return WebhookSigner(kid=self.kid, now=self._now).sign_webhook(order, **kw)
            case "bad_signature":
                head, body, sig = self.sign_webhook(order, **kw).split(".")
                raw = bytearray(b64url_decode(sig))
                raw[len(raw) // 2] ^= 0xFF
                return f"{head}.{body}.{b64url(bytes(raw))}"
            case "tampered":
                head, body, sig = self.sign_webhook(order, **kw).split(".")
                claims = json.loads(b64url_decode(body))
                event = json.loads(claims["data"])
                event["instanceId"] = "attacker-site"
                inner = json.loads(event["data"])
                inner["entityId"] = "00000000-0000-0000-0000-00000000dead"
                event["data"] = _json(inner)
                claims["data"] = _json(event)
                return f"{head}.{b64url(_json(claims).encode())}.{sig}"
            case _:
                raise ValueError(f"unknown bad token kind {kind!r}; one of {', '.join(BAD_KINDS)}")


def decode_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) without checking anything: for tests and debugging only."""
    head, body, _sig = token.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(body))
