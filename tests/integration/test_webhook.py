"""A real `wix-printer serve` process, real RS256 tokens, a real SQLite file."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Service, sample
from wix_printer.fakewix.signing import WebhookSigner


def snapshot(db: Path) -> str:
    """A digest of every row the intake writes: unchanged means nothing was stored."""
    with sqlite3.connect(db) as c:
        rows = [c.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("events", "orders", "jobs")]
    return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()


def variant(i: int) -> dict[str, Any]:
    o = sample()
    o["id"] = f"{o['id'][:-2]}{i:02d}"
    o["number"] = str(30000 + i)
    return o


@pytest.fixture
def svc(service_factory: Any) -> Service:
    s: Service = service_factory()
    return s


@pytest.mark.parametrize("form", ["object", "string", "action", "updated"])
def test_signed_webhook_is_stored_with_its_jobs(svc: Service, signer: WebhookSigner, form: str) -> None:
    order = variant(1)
    code, body = svc.post(signer.sign_webhook(order, "approved", form, "site-1", 1, None, 600, "RS256"))
    assert code == 200, body
    assert body["outcome"] == "queued" and body["order_id"] == order["id"]
    with sqlite3.connect(svc.db) as c:
        kinds = [r[0] for r in c.execute("SELECT kind FROM jobs WHERE order_id = ? ORDER BY id", (order["id"],))]
        raw = c.execute("SELECT raw FROM orders WHERE id = ?", (order["id"],)).fetchone()[0]
    assert kinds == ["kitchen", "driver", "customer"]
    assert json.loads(raw)["buyerNote"].startswith("Bitte Besteck")


def test_same_event_five_times_is_one_order(svc: Service, signer: WebhookSigner) -> None:
    token = signer.sign_webhook(variant(2), "approved", "object", "site-1", 1, "evt-fixed", 600, "RS256")
    answers = [svc.post(token) for _ in range(5)]
    assert [c for c, _ in answers] == [200] * 5
    assert [b["outcome"] for _, b in answers] == ["queued"] + ["duplicate"] * 4
    st = svc.status()
    assert st["orders"]["total"] == 1
    assert sum(st["jobs"].values()) == 3


BAD = ["bad_signature", "hs256", "none", "expired", "tampered", "wrong_key"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_tokens_rejected_and_nothing_stored(svc: Service, signer: WebhookSigner, kind: str) -> None:
    svc.post(signer.sign_webhook(variant(3), "approved", "object", "site-1", 1, None, 600, "RS256"))
    before = snapshot(svc.db)
    code, body = svc.post(signer.bad_token(kind, variant(4), instance_id="site-1"))  # type: ignore[arg-type]
    assert code == 401, body
    assert body["ok"] is False and body["reason"] and body["error"]
    assert snapshot(svc.db) == before


def test_other_site_and_malformed_layers_rejected(svc: Service, signer: WebhookSigner) -> None:
    before = snapshot(svc.db)
    code, body = svc.post(signer.sign_webhook(variant(5), "approved", "object", "other-site", 1, None, 600, "RS256"))
    assert (code, body["reason"]) == (401, "unknown_instance")
    for junk in (b"not-a-jwt", b"", b"a.b.c", "ä.ö.ü".encode()):
        code, body = svc.post(junk)
        assert 400 <= code < 500, (junk, code)
        assert body["reason"] == "malformed" and body["error"]
    # Well signed, but layer B is not JSON.
    code, body = svc.post(signer.sign_claims({"data": json.dumps({"eventType": "wix.ecom.v1.order_approved",
                                                                        "instanceId": "site-1", "data": "{nope"})}))
    assert (code, body["reason"]) == (400, "malformed")
    code, body = svc.post(signer.sign_claims({"data": json.dumps({"eventType": "wix.ecom.v1.order_approved",
                                                                        "instanceId": "site-1", "data": json.dumps(
                                                                            {"id": "e", "entityId": "o1",
                                                                             "createdEvent": {"entity": {
                                                                                 "id": "o1", "lineItems": 5}}})})}))
    assert (code, body["reason"]) == (400, "malformed")
    assert snapshot(svc.db) == before


def raw_post(port: int, length: int, body: bytes) -> tuple[int | None, bytes]:
    """POST with a socket of our own: the service answers 413 as soon as it has read the
    headers and may close while a client is still sending, which urllib reports as a
    reset instead of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /webhooks/wix HTTP/1.1\r\nHost: box\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: %d\r\nConnection: close\r\n\r\n" % length)
        try:
            for i in range(0, len(body), 65536):
                s.sendall(body[i:i + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the service stopped reading: it has answered already
        raw = b""
        try:
            while chunk := s.recv(65536):
                raw += chunk
        except ConnectionResetError:
            pass
    if not raw.startswith(b"HTTP/1.1 "):
        return None, raw
    return int(raw.split()[1]), raw.partition(b"\r\n\r\n")[2]


def test_oversized_body_refused(svc: Service) -> None:
    limit = 2 * 1024 * 1024
    before = snapshot(svc.db)
    # Announced too large: refused from the headers alone, with a reason.
    code, body = raw_post(svc.port, limit + 1, b"")
    assert code == 413, body
    assert b"too large" in body.lower(), body
    # Sent in full: refused (413, or the connection closed under the sender), never stored.
    code, body = raw_post(svc.port, limit + 1, b"x" * (limit + 1))
    assert code in (413, None), (code, body)
    assert snapshot(svc.db) == before
    assert svc.status()["orders"]["total"] == 0


def test_health_and_status_shape(svc: Service) -> None:
    st = svc.status()
    for key in ("version", "uptime_seconds", "orders", "jobs", "printer", "wix", "queue_depth"):
        assert key in st
    assert set(st["jobs"]) >= {"queued", "sending", "printed", "uncertain", "failed", "cancelled"}


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_either_event_loop_serves(service_factory: Any, signer: WebhookSigner, loop: str) -> None:
    svc: Service = service_factory(http=f'event_loop = "{loop}"')
    code, body = svc.post(signer.sign_webhook(variant(7), "approved", "object", "site-1", 1, None, 600, "RS256"))
    assert code == 200, body
    assert svc.status()["orders"]["total"] == 1
    assert svc.proc is not None
    # uvloop is a shared object of its own: mapped only when it runs the loop.
    maps = Path(f"/proc/{svc.proc.pid}/maps").read_text()
    assert ("uvloop/loop." in maps) == (loop == "uvloop")


def serve_refused(tmp_path: Path, toml: str) -> tuple[Path, str]:
    """`serve` on a broken config file: it must stop with exit code 2; returns its stderr."""
    import subprocess
    import sys

    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    r = subprocess.run([sys.executable, "-m", "wix_printer", "serve", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    return cfg, r.stderr


def test_unknown_event_loop_is_refused_by_name(tmp_path: Path) -> None:
    cfg, err = serve_refused(tmp_path, '[http]\nevent_loop = "trio"\n')
    assert "http.event_loop" in err and str(cfg) in err


def test_a_server_error_leaves_a_traceback_in_the_log(svc: Service) -> None:
    # A store that lost a table (a bad restore, a disk fault) makes /status fail: the
    # owner's journal must say why, while refusals (404, 413) stay out of it.
    from tests.helpers import http

    assert http("GET", f"{svc.url}/no/such/page")[0] == 404
    with sqlite3.connect(svc.db) as c:
        c.execute("ALTER TABLE jobs RENAME TO jobs_lost")
    code, _ = http("GET", f"{svc.url}/status")
    assert code == 500
    log = svc.log.read_text(errors="replace")
    assert "GET /status failed" in log and "Traceback" in log and "no such table: jobs" in log, log[-3000:]
    assert "/no/such/page" not in log


def test_broken_config_stops_startup_naming_the_key(tmp_path: Path, signer: WebhookSigner) -> None:
    cfg, err = serve_refused(tmp_path, '[printer]\nprot = 9100\n')
    assert "printer.prot" in err and str(cfg) in err
    assert len(err.strip().splitlines()) == 1
