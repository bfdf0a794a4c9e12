"""The HTML status page: server-rendered, plain forms, a few lines of JS for live updates.

Every form posts, then redirects back (303) with a one-line message in the session, so a
reload never repeats an action. Access and CSRF are enforced in access.py before any of
these run; the handlers here only do the work.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import Request, get, post
from litestar.enums import MediaType, RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from litestar.response import Redirect, Response
from markupsafe import Markup

from .. import operations
from ..printing.render import make_renderer
from ..receipts import BANNER_COPY
from ..receipts.i18n import lang_of
from ..store import queries
from . import preview
from .access import client_key, new_csrf_token
from .auth import MAX_PASSWORD, MIN_PASSWORD, state_dir
from .i18n import Lang, pick, translator
from .state import WebDep

AnyRequest = Request[Any, Any, Any]
NO_STORE = {"cache-control": "no-store"}


class LoginForm(msgspec.Struct):
    password: str = ""
    next: str = ""
    csrf_token: str = ""


class SetupForm(msgspec.Struct):
    password: str = ""
    password_repeat: str = ""
    csrf_token: str = ""


class ActionForm(msgspec.Struct):
    kind: str = ""
    csrf_token: str = ""


def session_of(request: AnyRequest) -> dict[str, Any]:
    s = request.scope.get("session")
    if not isinstance(s, dict):
        s = {}
        request.set_session(s)
    return s


def csrf_of(request: AnyRequest) -> str:
    s = session_of(request)
    if not isinstance(s.get("csrf"), str):
        s["csrf"] = new_csrf_token()
    return str(s["csrf"])


def lang_for(request: AnyRequest, web: WebDep) -> Lang:
    s = session_of(request)
    chosen = request.query_params.get("lang")
    if chosen in ("de", "en"):
        s["lang"] = chosen
    return pick(request.headers.get("accept-language", ""), s.get("lang"), web.services.config.restaurant.language)


def flash(request: AnyRequest, text: str, level: str = "ok") -> None:
    session_of(request)["flash"] = [level, text]


def render(web: WebDep, request: AnyRequest, template: str, status: int = 200, **ctx: Any) -> Response[str]:
    lang = lang_for(request, web)
    s = session_of(request)
    html = web.jinja.get_template(template).render(
        t=translator(lang), lang=lang, csrf=csrf_of(request), flash=s.pop("flash", None),
        logged_in=web.auth.session_ok(s), restaurant=web.services.config.restaurant.name,
        v=web.asset_version, path=request.url.path, **ctx)
    return Response(html, media_type=MediaType.HTML, status_code=status, headers=NO_STORE)


def _safe_next(target: str) -> str:
    """Only paths on this box: an open redirect after login would be a phishing aid."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


# --- the page ----------------------------------------------------------------------------
@get("/", include_in_schema=False)
async def show_status_page(request: AnyRequest, web: WebDep) -> Response[str]:
    lang = lang_for(request, web)
    # Already escaped by the template that rendered it (autoescape); only the CSRF slot was filled.
    live = Markup(await web.live_html(lang, csrf_of(request)))  # noqa: S704
    return render(web, request, "index.html", live=live)


@get("/ui/live", include_in_schema=False)
async def show_live_fragment(request: AnyRequest, web: WebDep) -> Response[str]:
    """What the page's script swaps in every few seconds (same markup as the first render)."""
    html = await web.live_html(lang_for(request, web), csrf_of(request))
    return Response(html, media_type=MediaType.HTML, headers=NO_STORE)


async def _payload_or_preview(web: WebDep, job_id: int) -> bytes:
    job = await web.services.store.get_job(job_id)
    if job is None:
        raise NotFoundException(f"no job {job_id}")
    if job.payload is not None:
        return bytes(job.payload)
    # Not sent yet (queued, held, failed before sending): show what it would print.
    order = await web.services.store.get_order(job.order_id)
    return await asyncio.to_thread(make_renderer(web.services.config, web.services.clock), job, order)


@get("/ui/jobs/{job_id:int}/receipt.png", include_in_schema=False)
async def show_receipt_png(job_id: int, web: WebDep) -> Response[bytes]:
    job = await queries.job(web.services.store, job_id)
    if job is None:
        raise NotFoundException(f"no job {job_id}")
    key = (job_id, int(job.updated_at * 1000))
    png = web.pngs.get(key)
    if png is None:
        data = await _payload_or_preview(web, job_id)
        try:
            png = await asyncio.to_thread(preview.as_png, data)
        except ValueError as e:
            raise NotFoundException(str(e)) from None
        web.pngs.put(key, png)
    return Response(png, media_type="image/png", headers={"cache-control": "private, max-age=60"})


@get("/ui/jobs/{job_id:int}/receipt.txt", include_in_schema=False)
async def show_receipt_text(job_id: int, web: WebDep) -> Response[str]:
    data = await _payload_or_preview(web, job_id)
    return Response(preview.as_text(data), media_type="text/plain; charset=utf-8", headers=NO_STORE)


# --- actions -----------------------------------------------------------------------------
def _back(anchor: str = "") -> Redirect:
    return Redirect("/" + (f"#{anchor}" if anchor else ""), status_code=303)


async def _do(request: AnyRequest, web: WebDep, action: Any, ok: str, anchor: str = "") -> Redirect:
    t = translator(lang_for(request, web))
    try:
        created = await action
    except operations.OperationError as e:
        flash(request, e.message, "error")
        return _back(anchor)
    web.services.worker_wake()
    web.changed()
    flash(request, t[ok].format(n=len(created.job_ids)))
    return _back(anchor)


def copy_banner(web: WebDep) -> str:
    cfg = web.services.config
    return BANNER_COPY[lang_of(cfg.receipts.language or cfg.restaurant.language)]


@post("/ui/orders/{order_id:str}/reprint", include_in_schema=False)
async def reprint_from_page(
    request: AnyRequest, web: WebDep, order_id: str,
    data: Annotated[ActionForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Redirect:
    kinds = [data.kind] if data.kind else None
    return await _do(request, web, operations.reprint(web.services.store, order_id, kinds, copy_banner(web)),
                     "done_reprint", f"o-{order_id}")


@post("/ui/test-print", include_in_schema=False)
async def test_print_from_page(request: AnyRequest, web: WebDep) -> Redirect:
    return await _do(request, web, operations.test_print(web.services.store), "done_test")


@post("/ui/retry-failed", include_in_schema=False)
async def retry_failed_from_page(request: AnyRequest, web: WebDep) -> Redirect:
    return await _do(request, web, operations.retry_all_failed(web.services.store), "done_retry")


@post("/ui/jobs/{job_id:int}/retry", include_in_schema=False)
async def retry_job_from_page(request: AnyRequest, web: WebDep, job_id: int) -> Redirect:
    return await _do(request, web, operations.retry(web.services.store, job_id), "done_retry")


@post("/ui/jobs/{job_id:int}/dismiss", include_in_schema=False)
async def dismiss_job_from_page(request: AnyRequest, web: WebDep, job_id: int) -> Redirect:
    return await _do(request, web, operations.dismiss(web.services.store, job_id), "done_dismiss")


# --- login, logout, first password, setup -----------------------------------------------
@get("/login", include_in_schema=False)
async def show_login(request: AnyRequest, web: WebDep) -> Response[Any]:
    if not web.auth.is_set:
        return Redirect("/setup", status_code=303)
    return render(web, request, "login.html", next=_safe_next(request.query_params.get("next", "/")))


@post("/login", include_in_schema=False)
async def log_in(
    request: AnyRequest, web: WebDep, data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    t = translator(lang_for(request, web))
    client = client_key(request.scope)  # type: ignore[arg-type]
    wait = web.auth.limiter.retry_after(client)
    target = _safe_next(data.next or "/")
    if wait > 0:
        minutes = max(1, round(wait / 60))
        resp = render(web, request, "login.html", status=429, next=target,
                      error=t["rate_limited"].format(minutes=minutes))
        resp.headers["retry-after"] = str(int(wait) + 1)
        return resp
    if not await web.auth.check_password(data.password):
        web.auth.limiter.failed(client)
        return render(web, request, "login.html", status=401, next=target, error=t["wrong_password"])
    web.auth.limiter.succeeded(client)
    _start_session(request, web)
    return Redirect(target, status_code=303)


def _start_session(request: AnyRequest, web: WebDep) -> None:
    # A fresh CSRF token at login: a token planted before login is worthless after it.
    lang = session_of(request).get("lang")
    request.set_session({"auth": web.auth.fingerprint, "at": web.auth.clock(), "csrf": new_csrf_token(),
                         **({"lang": lang} if lang else {})})


@post("/logout", include_in_schema=False)
async def log_out(request: AnyRequest) -> Redirect:
    request.clear_session()
    return Redirect("/login", status_code=303)


@get("/setup", include_in_schema=False)
async def show_setup(request: AnyRequest, web: WebDep) -> Response[str]:
    if not web.auth.is_set:
        return render(web, request, "first_password.html", min_length=MIN_PASSWORD)
    return render(web, request, "setup.html", checks=setup_checks(web, lang_for(request, web)))


@post("/setup", include_in_schema=False)
async def set_first_password(
    request: AnyRequest, web: WebDep, data: Annotated[SetupForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[Any]:
    t = translator(lang_for(request, web))
    error = None
    if len(data.password) < MIN_PASSWORD or len(data.password) > MAX_PASSWORD:
        error = t["too_short"].format(n=MIN_PASSWORD)
    elif data.password != data.password_repeat:
        error = t["mismatch"]
    if error:
        return render(web, request, "first_password.html", status=400, min_length=MIN_PASSWORD, error=error)
    if not await web.auth.set_first_password(data.password):
        flash(request, t["already_set"], "error")
        return Redirect("/login", status_code=303)
    _start_session(request, web)
    return Redirect("/setup", status_code=303)


class Check(msgspec.Struct):
    name: str
    ok: bool
    optional: bool
    detail: str
    fix: str


def setup_checks(web: WebDep, lang: Lang) -> list[Check]:
    """What is missing, and the one thing to do about it (in the kitchen's language)."""
    cfg = web.services.config
    de = lang == "de"
    files = "/etc/wix-printer/config.toml / secrets.toml"
    mon = web.services.printer_monitor
    # First boot (wix_appliance.firstboot) leaves this file while wix-printer.toml on the
    # boot partition has errors; it names every wrong line and key.
    boot_error = state_dir(cfg) / "boot-config-error.txt"
    boot_problems = [line.strip()[2:] for line in boot_error.read_text(errors="replace").splitlines()
                     if line.strip().startswith("* ")] if boot_error.is_file() else []
    checks = [
        Check("Boot-Datei wix-printer.toml" if de else "Boot file wix-printer.toml", False, False,
              "; ".join(boot_problems),
              "Die genannten Zeilen in wix-printer.toml auf der Boot-Partition korrigieren, Box neu starten." if de
              else "Fix the lines named in wix-printer.toml on the boot partition, then restart the box.")
    ] if boot_problems else []
    checks += [
        Check("Admin-Passwort" if de else "Admin password", web.auth.is_set, False,
              {"config": "[api] admin_password_hash", "file": str(web.auth.password_file)}.get(web.auth.source, ""),
              "Beim ersten Aufruf dieser Seite festlegen." if de else "Set it on the first visit of this page."),
        Check("Wix-Webhooks (öffentlicher Schlüssel)" if de else "Wix webhooks (public key)",
              web.services.verifier is not None, False, "[wix] public_key",
              (f"Den öffentlichen Schlüssel der Wix-App als [wix] public_key in {files} eintragen, "
               "dann den Dienst neu starten.") if de else
              f"Put the Wix app's public key into [wix] public_key in {files}, then restart the service."),
        Check("Wix-Abgleich (API-Schlüssel)" if de else "Wix catch-up (API key)",
              bool(cfg.wix.api_key and cfg.wix.site_id), False, "[wix] api_key, site_id",
              (f"API-Schlüssel und Site-ID aus dem Wix-Dashboard als [wix] api_key / site_id in {files} "
               "eintragen (oder in wix-printer.toml auf der Boot-Partition).") if de else
              (f"Put the API key and site id from the Wix dashboard into [wix] api_key / site_id in {files} "
               "(or wix-printer.toml on the boot partition).")),
        Check("Drucker" if de else "Printer", mon.state.value in ("online", "paper_low") and cfg.printer.kind != "none",
              False, f"{cfg.printer.kind} {cfg.printer.host}:{cfg.printer.port} – {mon.state}",
              ("Drucker einschalten, Netzwerkkabel prüfen, [printer] host/port eintragen; dann "
               "„Testseite drucken“.") if de else
              "Switch the printer on, check its cable, set [printer] host/port; then 'Print test page'."),
        Check("E-Mail-Benachrichtigungen (SMTP)" if de else "Mail alerts (SMTP)", cfg.mail.enabled, True,
              f"{cfg.mail.host}:{cfg.mail.port}" if cfg.mail.host else "[mail]",
              "Mit `wix-printer setup-mail` einrichten ([mail] host, sender, recipients)." if de else
              "Set up with `wix-printer setup-mail` ([mail] host, sender, recipients)."),
        Check("API-Token für Integratoren" if de else "API token for integrators", bool(cfg.api.token), True,
              "[api] token", "Einen langen Zufallswert als [api] token in secrets.toml setzen." if de else
              "Set a long random value as [api] token in secrets.toml."),
    ]
    return checks
