"""Owner notifications: incidents -> durable outbox -> SMTP, throttled, in de/en templates."""

from .kinds import SEVERITY, Kind
from .notifier import Notifier
from .smtp import SmtpFailure, check_login
from .templates import Renderer, validate_templates

__all__ = ["SEVERITY", "Kind", "Notifier", "Renderer", "SmtpFailure", "check_login", "validate_templates"]
