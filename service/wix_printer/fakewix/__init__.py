"""A local fake of Wix for tests and the demo: signed webhooks, order search, faults.

Never used by the running service; it lives in the package so `wix-printer fakewix`
works from an installed appliance image for on-site demos.
"""

from wix_printer.fakewix.orders import generate_orders
from wix_printer.fakewix.server import FailureSpec, FakeWix, FakeWixError, RecordedRequest
from wix_printer.fakewix.signing import (
    BAD_KINDS,
    FORMS,
    WebhookSigner,
    b64url_decode,
    build_event,
    decode_unverified,
)

__all__ = [
    "BAD_KINDS",
    "FORMS",
    "FailureSpec",
    "FakeWix",
    "FakeWixError",
    "RecordedRequest",
    "WebhookSigner",
    "b64url_decode",
    "build_event",
    "decode_unverified",
    "generate_orders",
]
