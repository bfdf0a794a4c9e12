"""Access to the status page and the operator API, against a real `wix-printer serve`."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from litestar.exceptions import LitestarDeprecationWarning
from litestar.routes import HTTPRoute

from tests.helpers import Service, sample
from tests.web.conftest import PASSWORD, TOKEN, csrf_from, login
from wix_printer.app import create_app
from wix_printer.config import load_config
from wix_printer.devprinter import VirtualPrinter
from wix_printer.fakewix.signing import WebhookSigner

PUBLIC = {"/webhooks/wix", "/status", "/health", "/metrics", "/login", "/logout"}
Client = Callable[[Service], httpx.Client]


def _routes(svc: Service) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, path parameters filled in."""
    with warnings.catch_warnings():
        # Handlers outside web/ still use inferred dependencies (a Litestar 3 deprecation).
        warnings.simplefilter("ignore", LitestarDeprecationWarning)
        app = create_app(load_config(svc.config))
    out = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = re.sub(r"\{[^}:]+:int\}", "1", route.path)
        path = re.sub(r"\{[^}:]+:path\}", "/style.css", path)
        path = re.sub(r"\{[^}]+\}", "some-id", path)
        for method in sorted(route.methods - {"OPTIONS", "HEAD"}):
            out.append((method, path))
    return out


def test_every_page_and_endpoint_needs_login(web_service: Any, client_for: Client) -> None:
    svc: Service = web_service()
    c = client_for(svc)
    routes = _routes(svc)
    assert ("GET", "/") in routes and ("POST", "/api/v1/orders/some-id/reprint") in routes
    assert ("GET", "/schema/openapi.json") in routes
    checked = 0
    for method, path in routes:
        if path in PUBLIC or path.startswith("/static"):
            continue
        r = c.request(method, path)
        checked += 1
        if method == "GET" and not path.startswith(("/api/", "/metrics")):
            assert r.status_code == 303, (method, path, r.status_code)
            assert r.headers["location"].startswith("/login"), (path, r.headers["location"])
        else:
            assert r.status_code == 401, (method, path, r.status_code, r.text[:200])
            assert r.headers["www-authenticate"].startswith("Bearer")
        # The same without a browser's Accept header: always 401 JSON.
        r = c.request(method, path, headers={"accept": "application/json"})
        assert r.status_code == 401, (method, path)
    assert checked >= 20


def test_public_paths_and_status_carries_no_personal_data(web_service: Any, client_for: Client,
                                                         signer: WebhookSigner) -> None:
    svc: Service = web_service()
    order = sample()
    assert svc.post(signer.sign_webhook(order, "approved", "object", "site-1", 1, None, 600, "RS256"))[0] == 200
    c = client_for(svc)
    status = c.get("/status")
    assert status.status_code == 200
    body = status.json()
    assert body["orders"]["total"] == 1 and set(body["jobs"]) >= {"queued", "printed", "failed", "held"}
    assert "version" in body
    for personal in ("Müller", "Lüdenscheidt", "+49", order["id"]):
        assert personal not in status.text
    assert c.get("/health").status_code in (200, 503)
    metrics = c.get("/metrics")
    assert metrics.status_code == 200 and "wixprinter_queue_depth" in metrics.text
    assert c.get("/static/style.css").status_code == 200


def test_metrics_and_health_can_require_login(web_service: Any, client_for: Client) -> None:
    svc: Service = web_service(api_extra="public_health = false\npublic_metrics = false\n")
    c = client_for(svc)
    assert c.get("/metrics").status_code == 401
    assert c.get("/health", headers={"accept": "application/json"}).status_code == 401
    assert c.get("/status").status_code == 200  # the contract stays public
    ok = c.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and "wixprinter_printer_state" in ok.text


def test_bearer_token(web_service: Any, client_for: Client) -> None:
    svc: Service = web_service()
    c = client_for(svc)
    assert c.get("/api/v1/orders", headers={"authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/v1/orders", headers={"authorization": f"Basic {TOKEN}"}).status_code == 401
    r = c.get("/api/v1/orders", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.json()["items"] == []
    # A token request needs no CSRF token: it carries no ambient credential.
    r = c.post("/api/v1/test-print", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 201 and len(r.json()["job_ids"]) == 1
    assert c.get("/schema/openapi.json", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_login_session_cookie_and_logout(web_service: Any, client_for: Client) -> None:
    svc: Service = web_service()
    c = client_for(svc)
    r = login(c)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Secure" not in cookie
    page = c.get("/")
    assert page.status_code == 200 and 'id="printer"' in page.text
    assert c.get("/api/v1/jobs", headers={"accept": "application/json"}).status_code == 200
    assert c.get("/setup").status_code == 200
    r = c.post("/logout", data={"csrf_token": csrf_from(page.text)})
    assert r.status_code == 303
    assert c.get("/").status_code == 303


def test_cookie_is_secure_behind_the_https_relay(web_service: Any, client_for: Client) -> None:
    svc: Service = web_service()
    c = client_for(svc)
    r = c.get("/login", headers={"x-forwarded-proto": "https"})
    assert "Secure" in r.headers["set-cookie"]


def test_forged_forms_are_refused(web_service: Any, client_for: Client) -> None:
    svc: Service = web_service()
    c = client_for(svc)
    login(c)
    page = c.get("/").text
    token = csrf_from(page)
    for data in ({}, {"csrf_token": "forged"}, {"csrf_token": token[:-1]}):
        r = c.post("/ui/test-print", data=data)
        assert r.status_code == 403, (data, r.status_code)
    # Same for the JSON API used with the session cookie, and for the login form itself.
    assert c.post("/api/v1/test-print").status_code == 403
    assert c.post("/api/v1/test-print", headers={"x-csrf-token": "nope"}).status_code == 403
    other = client_for(svc)
    assert other.post("/login", data={"password": PASSWORD}).status_code == 403
    # Nothing was queued by the forgeries; the real form works.
    assert svc.status()["jobs"]["queued"] == 0
    assert c.post("/ui/test-print", data={"csrf_token": token}).status_code == 303
    assert c.post("/api/v1/test-print", headers={"x-csrf-token": token}).status_code == 201
    assert svc.status()["jobs"]["queued"] + svc.status()["jobs"]["sending"] >= 1


def test_twenty_wrong_passwords_are_rate_limited(web_service: Any, client_for: Client) -> None:
    svc: Service = web_service()
    c = client_for(svc)
    token = csrf_from(c.get("/login").text)
    codes = [c.post("/login", data={"password": f"guess-{i}", "csrf_token": token}).status_code for i in range(20)]
    assert codes[:5] == [401] * 5
    assert set(codes[5:]) == {429}, codes
    # Locked out: even the right password is refused until the window has passed.
    r = c.post("/login", data={"password": PASSWORD, "csrf_token": token})
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0


def test_first_visit_sets_the_password_once(web_service: Any, client_for: Client, tmp_path: Path) -> None:
    svc: Service = web_service(with_password=False)
    c = client_for(svc)
    assert c.get("/").headers["location"] == "/setup"
    assert c.get("/login").headers["location"] == "/setup"
    form = c.get("/setup")
    assert form.status_code == 200 and 'name="password_repeat"' in form.text
    token = csrf_from(form.text)
    assert c.post("/setup", data={"password": "short", "password_repeat": "short", "csrf_token": token}
                  ).status_code == 400
    r = c.post("/setup", data={"password": "first-pass-1", "password_repeat": "first-pass-1", "csrf_token": token})
    assert r.status_code == 303
    pw_file = tmp_path / "admin_password"
    assert stat.S_IMODE(os.stat(pw_file).st_mode) == 0o600
    assert pw_file.read_text().startswith("scrypt$")
    assert stat.S_IMODE(os.stat(tmp_path / "session.key").st_mode) == 0o600
    assert c.get("/").status_code == 200  # logged in by setting it
    # A second visitor cannot set it again: /setup now needs a login.
    other = client_for(svc)
    assert other.get("/setup").status_code == 303
    token2 = csrf_from(other.get("/login").text)
    assert other.post("/setup", data={"password": "evil-pass-1", "password_repeat": "evil-pass-1",
                                      "csrf_token": token2}).status_code == 401
    assert login(other, "first-pass-1").status_code == 303
    # The password survives a restart (file), and so does the session (secret file).
    svc.stop()
    svc.start()
    assert c.get("/").status_code == 200


def test_open_redirect_after_login_is_refused(web_service: Any, client_for: Client) -> None:
    svc: Service = web_service()
    c = client_for(svc)
    token = csrf_from(c.get("/login").text)
    r = c.post("/login", data={"password": PASSWORD, "next": "//evil.example/x", "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/"


async def test_operator_api_and_page_actions(tmp_path: Path, web_service: Any, client_for: Client,
                                             signer: WebhookSigner) -> None:
    async with VirtualPrinter(tmp_path / "paper") as vp:
        svc: Service = await asyncio.to_thread(web_service, printer_port=vp.port)
        order = sample()
        token = signer.sign_webhook(order, "approved", "object", "site-1", 1, None, 600, "RS256")
        assert (await asyncio.to_thread(svc.post, token))[0] == 200
        await vp.wait_for_jobs(3, timeout=20)
        auth = {"authorization": f"Bearer {TOKEN}", "accept": "application/json"}
        async with httpx.AsyncClient(base_url=svc.url, headers=auth, timeout=10) as api:
            orders = (await api.get("/api/v1/orders", params={"limit": 5})).json()
            assert [o["number"] for o in orders["items"]] == [order["number"]]
            assert "raw" not in orders["items"][0]
            detail = (await api.get(f"/api/v1/orders/{order['id']}")).json()
            assert sorted(j["kind"] for j in detail["jobs"]) == ["customer", "driver", "kitchen"]
            printed = (await api.get("/api/v1/jobs", params={"state": "printed"})).json()["items"]
            assert len(printed) == 3
            assert (await api.get("/api/v1/jobs", params={"state": "failed"})).json()["items"] == []
            assert (await api.get("/api/v1/jobs/999999")).status_code == 404
            assert (await api.post("/api/v1/orders/nope/reprint")).status_code == 404
            r = await api.post(f"/api/v1/orders/{order['id']}/reprint", json={"kinds": ["driver"]})
            assert r.status_code == 201, r.text
            job_id = r.json()["job_ids"][0]
            assert (await api.post(f"/api/v1/jobs/{job_id}/retry")).status_code in (404, 409)
        jobs = await vp.wait_for_jobs(4, timeout=10)
        assert "KOPIE" in jobs[3].text
        metrics = await asyncio.to_thread(client_for(svc).get, "/metrics")
        assert 'wixprinter_orders_received_total{source="webhook"} 1.0' in metrics.text
        assert 'wixprinter_printer_state{state="online"} 1.0' in metrics.text
        count = re.search(r"wixprinter_order_to_paper_seconds_count (\S+)", metrics.text)
        assert count and float(count.group(1)) == 3.0
        # Previews: the picture and the text of exactly what the printer got.
        c = client_for(svc)
        await asyncio.to_thread(login, c)
        png = await asyncio.to_thread(c.get, f"/ui/jobs/{printed[0]['id']}/receipt.png")
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
        txt = await asyncio.to_thread(c.get, f"/ui/jobs/{job_id}/receipt.txt")
        assert "KOPIE" in txt.text and f"#{order['number']}" in txt.text


def test_yaml_schema_loads_yaml_only_when_asked(web_service: Any) -> None:
    """`serve` defers PyYAML (1 MiB of an idle box) until the YAML schema is asked for."""
    import yaml

    from tests.helpers import http

    svc: Service = web_service()
    assert svc.proc is not None
    maps = Path(f"/proc/{svc.proc.pid}/maps")
    assert "/yaml/_yaml." not in maps.read_text()
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert http("GET", f"{svc.url}/schema/openapi.yaml")[0] == 401
    code, body = http("GET", f"{svc.url}/schema/openapi.yaml", headers=auth)
    assert code == 200, body[:300]
    schema = yaml.safe_load(body)
    assert "/webhooks/wix" in schema["paths"] and schema["info"]["title"] == "wix-printer"
    code, body = http("GET", f"{svc.url}/schema/openapi.json", headers=auth)
    assert code == 200 and yaml.safe_load(body) == schema
