"""POST /webhooks/wix: verify, unwrap, commit, answer. Never calls Wix or the printer."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, post
from litestar.response import Response

from ..services import ServicesDep
from ..wix.events import ORDER_EVENT_PREFIX, parse_event
from ..wix.jwt import TokenError

log = logging.getLogger(__name__)

# Authentication problems are 401 (Wix's own wording); a well-signed token whose
# content we cannot read is the sender's fault too, but not an auth problem: 400.
_STATUS = {"bad_signature": 401, "bad_algorithm": 401, "expired": 401, "not_yet_valid": 401,
           "unknown_instance": 401, "malformed": 400, "not_configured": 503}


class WebhookAnswer(msgspec.Struct):
    ok: bool
    outcome: str | None = None
    order_id: str | None = None
    error: str | None = None
    reason: str | None = None


def _reject(reason: str, detail: str) -> Response[WebhookAnswer]:
    log.warning("webhook rejected: %s: %s", reason, detail)
    return Response(WebhookAnswer(ok=False, error=detail, reason=reason), status_code=_STATUS.get(reason, 400))


@post("/webhooks/wix", status_code=200, summary="Receive a signed Wix order webhook")
async def receive_wix_webhook(request: Request[Any, Any, Any], services: ServicesDep) -> Response[WebhookAnswer]:
    """The body is Wix's compact JWS (RS256). 200 only after the event is committed."""
    received_at = services.clock()
    body = await request.body()
    if len(body) > services.config.http.max_body_bytes:
        return _reject("too_large", f"body of {len(body)} bytes exceeds the limit")
    verifier = services.verifier
    if verifier is None:
        return _reject("not_configured", "no Wix public key configured ([wix] public_key)")
    try:
        event = parse_event(verifier.verify(body))
        expected = services.config.wix.instance_id
        if expected and event.instance_id != expected:
            raise TokenError("unknown_instance", f"instanceId {event.instance_id!r} is not this site")
    except TokenError as e:
        return _reject(e.reason, e.detail)
    if not event.event_type.startswith(ORDER_EVENT_PREFIX):
        # Not ours to print, but a 4xx would make Wix retry it for two days.
        return Response(WebhookAnswer(ok=True, outcome="ignored"), status_code=200)
    try:
        result = await services.intake.ingest(
            event.order, event_id=event.event_id, event_type=event.event_type, order_id=event.order_id,
            sequence=event.sequence, source="webhook", received_at=received_at,
        )
    except msgspec.ValidationError as e:
        return _reject("malformed", f"order payload: {e}")
    services.webhook_seen(received_at)
    if result.jobs_created:
        services.worker_wake()
    return Response(WebhookAnswer(ok=True, outcome=result.outcome, order_id=result.order_id), status_code=200)
