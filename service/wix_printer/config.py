"""Typed settings: one TOML file (plus an optional secrets file), validated once at start-up.

Every section is a frozen msgspec Struct that forbids unknown keys, so a typo in a
restaurant's config stops start-up with one line naming the key instead of being
silently ignored.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

ReceiptKind = Literal["kitchen", "driver", "customer"]
RECEIPT_KINDS: tuple[ReceiptKind, ...] = ("kitchen", "driver", "customer")


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Shared options of every config section: immutable, unknown keys are errors."""


class HttpConfig(Section, frozen=True):
    host: str = "127.0.0.1"
    port: int = 8080
    # Wix orders are at most a few hundred KiB; anything bigger is not a Wix webhook.
    max_body_bytes: int = 2 * 1024 * 1024
    # "asyncio" meets both the memory and the CPU-per-ticket targets since a ticket costs one
    # hand-off to the database thread; "uvloop" (or "auto": uvloop when installed) costs
    # 2.4 MiB more memory for more webhook throughput. bench/BENCHMARKS.md section 12.
    event_loop: Literal["auto", "asyncio", "uvloop"] = "asyncio"


class StoreConfig(Section, frozen=True):
    path: str = "/var/lib/wix-printer/queue.db"
    backup_dir: str = "/var/backups/wix-printer"
    # A lease longer than the slowest print (paper end while printing) would hide a
    # crashed worker for too long; shorter would let two workers print one job.
    lease_seconds: float = 120.0
    keep_days: int = 30


POLL_DEFAULTS = {"poll": 5.0, "both": 300.0, "webhook": 0.0}


class WixConfig(Section, frozen=True):
    public_key: str = ""
    api_key: str = ""
    site_id: str = ""
    instance_id: str = ""
    base_url: str = "https://www.wixapis.com"
    # poll: the box has no public URL; the catch-up search is the intake (every few seconds).
    # webhook: Wix reaches the box (through the relay); search only at start-up and after
    # an outage. both: webhooks, plus a slow search as the safety net.
    intake: Literal["poll", "webhook", "both"] = "poll"
    # Seconds between searches; unset: 5 (poll), 300 (both), none (webhook). 0 disables.
    poll_interval: float | None = None
    # Search from last_sync minus this margin so late approvals and cancellations are caught.
    catchup_margin: float = 900.0
    # Only line items whose catalogReference.appId is in this list count; empty = all.
    app_id_filter: list[str] = msgspec.field(default_factory=list)
    jwt_leeway: float = 60.0

    @property
    def effective_poll_interval(self) -> float:
        """0 means: no periodic search (start-up and after outages only)."""
        return self.poll_interval if self.poll_interval is not None else POLL_DEFAULTS[self.intake]
    request_timeout: float = 10.0
    # Attempts per search call (429/5xx/network) before the catch-up reports Wix unreachable.
    request_attempts: int = 6


class PrinterConfig(Section, frozen=True):
    kind: Literal["network", "usb", "file", "none"] = "network"
    host: str = "127.0.0.1"
    port: int = 9100
    usb_vendor: int = 0x04B8  # Epson
    usb_product: int = 0x0E28
    usb_in_ep: int = 0x82
    usb_out_ep: int = 0x01
    # python-escpos writes to USB without a timeout by default; a stuck printer must not
    # stall the worker for ever.
    usb_write_timeout: float = 10.0
    path: str = ""
    # "process_id": wait for GS ( H to come back (the job has been printed);
    # "status": for printers that never answer it, check DLE EOT after the job.
    confirm: Literal["process_id", "status"] = "process_id"
    codepage: Literal["cp1252", "cp858"] = "cp1252"
    columns: int = 48
    connect_timeout: float = 3.0
    # DLE EOT is answered at once by a live printer even mid-job; silence this long
    # means the peer is gone or wedged.
    status_timeout: float = 2.0
    confirm_timeout: float = 30.0
    # After a link drop, how long a late process-id answer may still arrive.
    late_confirm_wait: float = 2.0


class MailConfig(Section, frozen=True):
    enabled: bool = False
    host: str = ""
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str = ""
    password: str = ""
    sender: str = ""
    recipients: list[str] = msgspec.field(default_factory=list)
    language: Literal["de", "en"] = "de"
    timeout: float = 10.0
    verify_tls: bool = True
    ca_file: str = ""
    # Throttling (notify/): the first mail of an incident goes out at once; a new incident
    # of the same kind within repeat_interval of its last alert waits and is summarised,
    # so a flapping printer cannot flood the owner's phone.
    repeat_interval: float = 900.0
    # "Resolved" waits this long so an incident that comes straight back stays one incident.
    resolve_delay: float = 60.0
    # Across all kinds; "resolved" mails for incidents the owner was told about always go.
    max_per_hour: int = 12
    # Critical incidents (paper out, cover open, orders stuck, ...) still open after this
    # long during service hours get a second, urgent mail (0 = never), also to escalate_to.
    escalate_after: float = 900.0
    escalate_to: list[str] = msgspec.field(default_factory=list)
    # "HH:MM-HH:MM" in restaurant.timezone; empty = always (escalation only in these hours).
    service_hours: list[str] = msgspec.field(default_factory=list)
    # A folder with de/ and en/ template files overriding the built-in ones file by file.
    templates_dir: str = ""
    # SMTP retry backoff cap; a mail older than give_up_after is pointless and marked failed.
    retry_max: float = 600.0
    give_up_after: float = 172800.0
    # Watches run by the notifier: free space under the store, orders queued too long.
    disk_min_free_mb: int = 200
    stuck_after: float = 600.0


class RestaurantConfig(Section, frozen=True):
    name: str = "Restaurant"
    address: str = ""
    phone: str = ""
    timezone: str = "Europe/Berlin"
    language: Literal["de", "en"] = "de"


class ReceiptsConfig(Section, frozen=True):
    pickup: list[ReceiptKind] = msgspec.field(default_factory=lambda: ["kitchen", "customer"])
    delivery: list[ReceiptKind] = msgspec.field(default_factory=lambda: ["kitchen", "driver", "customer"])
    copies: dict[str, int] = msgspec.field(default_factory=dict)
    show_prices: bool = True
    header: str = ""
    footer: str = ""
    language: Literal["de", "en", ""] = ""
    # Orders whose wanted time is further away than this are marked PRE-ORDER.
    preorder_after_minutes: int = 90
    # "large" doubles width and height of the kitchen ticket's items.
    kitchen_item_size: Literal["normal", "large"] = "large"
    # Babel locale for amounts (e.g. "de_CH" prints "CHF 83.00"); empty = de_DE / en_GB
    # after the receipt language.
    money_locale: str = ""


class RecoveryConfig(Section, frozen=True):
    # Orders wanted (or placed, without a wanted time) longer ago than this are held for
    # a human instead of printed by themselves: yesterday's backlog must not bury the
    # kitchen after the printer comes back.
    stale_after_minutes: float = 180.0
    # Hold orders Wix already reports as fulfilled, too (they were handled some other way).
    hold_fulfilled: bool = True
    # Drain speed after an outage; 0 = as fast as the printer goes.
    tickets_per_minute: float = 0.0
    batch_size: int = 10
    batch_pause_seconds: float = 0.0
    # A printer away for less than this is a blip, not an outage: no recovery run.
    min_outage_seconds: float = 5.0
    # Validation is retried this many times (with backoff) before the run fails.
    max_validation_attempts: int = 8
    # A job whose outcome stayed unknown this many times is dead-lettered, not reprinted again.
    max_print_attempts: int = 5


class ApiConfig(Section, frozen=True):
    # Hash of the status-page password ("scrypt$..." or "pbkdf2_sha256$...", made by
    # `python -m wix_printer.web.passwd`); empty = the one set on the first visit of the
    # page, kept in <state_dir>/admin_password (0600). This key wins over that file.
    admin_password_hash: str = ""
    # Bearer token for the operator API (/api/v1/...); empty = API only with a page login.
    token: str = ""
    public_health: bool = True
    public_metrics: bool = True
    # Password file and session secret; empty = the folder of store.path.
    state_dir: str = ""
    # A kitchen tablet stays logged in this long after its last request (sliding).
    session_days: int = 30
    # Always mark cookies Secure (set when the page is only reached over HTTPS); without
    # it they are Secure whenever a request arrived over HTTPS (e.g. through the relay).
    secure_cookies: bool = False


class DemoConfig(Section, frozen=True):
    # Feed the embedded sample orders through the pipeline at start-up.
    sample_orders: bool = False


class Config(Section, frozen=True):
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    wix: WixConfig = msgspec.field(default_factory=WixConfig)
    printer: PrinterConfig = msgspec.field(default_factory=PrinterConfig)
    mail: MailConfig = msgspec.field(default_factory=MailConfig)
    restaurant: RestaurantConfig = msgspec.field(default_factory=RestaurantConfig)
    receipts: ReceiptsConfig = msgspec.field(default_factory=ReceiptsConfig)
    recovery: RecoveryConfig = msgspec.field(default_factory=RecoveryConfig)
    api: ApiConfig = msgspec.field(default_factory=ApiConfig)
    demo: DemoConfig = msgspec.field(default_factory=DemoConfig)
    secrets_file: str = ""


class ConfigError(Exception):
    """A config problem, already phrased as the one line an operator needs."""


_PATH_RE = re.compile(r"`\$((?:\.[A-Za-z0-9_]+|\[\d+\])*)`")


def _where(msg: str) -> str:
    """Turn msgspec's `$.http.port` into `http.port` for humans."""
    m = _PATH_RE.search(msg)
    return m.group(1).lstrip(".") if m else ""


def _explain(err: msgspec.ValidationError, source: str) -> str:
    text = str(err)
    where = _where(text)
    unknown = re.match(r"Object contains unknown field `([^`]+)`", text)
    if unknown:
        key = f"{where}.{unknown.group(1)}" if where else unknown.group(1)
        return f"{source}: unknown key `{key}`"
    missing = re.match(r"Object missing required field `([^`]+)`", text)
    if missing:
        key = f"{where}.{missing.group(1)}" if where else missing.group(1)
        return f"{source}: missing required key `{key}`"
    reason = text.split(" - at ")[0]
    return f"{source}: key `{where or '?'}`: {reason}"


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None


def check_secrets_mode(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: secrets file is readable by group/others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )


def load_config(path: str | os.PathLike[str] | None = None, *, secrets: bool = True) -> Config:
    """Read, merge and validate the config; raise ConfigError with one line on any problem."""
    raw_path = path or os.environ.get("WIX_PRINTER_CONFIG")
    data: dict[str, Any] = {}
    source = "<defaults>"
    base_dir = Path.cwd()
    if raw_path:
        p = Path(raw_path)
        data = _read_toml(p)
        source = str(p)
        base_dir = p.resolve().parent
    cfg = _decode(data, source)
    if secrets:
        sec_path = _secrets_path(cfg, base_dir, explicit=bool(raw_path))
        if sec_path is not None:
            check_secrets_mode(sec_path)
            sec = _read_toml(sec_path)
            cfg = _decode(_deep_merge(data, sec), f"{source} + {sec_path}")
    validate(cfg, source)
    return cfg


def _secrets_path(cfg: Config, base_dir: Path, *, explicit: bool) -> Path | None:
    env = os.environ.get("WIX_PRINTER_SECRETS")
    if cfg.secrets_file or env:
        p = Path(cfg.secrets_file or env or "")
        if not p.is_absolute():
            p = base_dir / p
        if not p.exists():
            raise ConfigError(f"{p}: secrets file not found")
        return p
    sibling = base_dir / "secrets.toml"
    return sibling if explicit and sibling.exists() else None


def _decode(data: dict[str, Any], source: str) -> Config:
    try:
        return msgspec.convert(data, Config, str_keys=True)
    except msgspec.ValidationError as e:
        raise ConfigError(_explain(e, source)) from None


def validate(cfg: Config, source: str) -> None:
    """Checks msgspec's types cannot express; each names the key at fault."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(cfg.restaurant.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{source}: key `restaurant.timezone`: unknown time zone {cfg.restaurant.timezone!r}"
        ) from None
    if not 1 <= cfg.http.port <= 65535:
        raise ConfigError(f"{source}: key `http.port`: must be 1..65535, got {cfg.http.port}")
    if cfg.printer.columns not in (32, 42, 48, 57, 64):
        raise ConfigError(f"{source}: key `printer.columns`: must be one of 32, 42, 48, 57, 64")
    for kind, n in cfg.receipts.copies.items():
        if kind not in RECEIPT_KINDS:
            raise ConfigError(f"{source}: key `receipts.copies.{kind}`: unknown receipt kind")
        if not 0 <= n <= 5:
            raise ConfigError(f"{source}: key `receipts.copies.{kind}`: must be 0..5, got {n}")
    if cfg.printer.kind == "file" and not cfg.printer.path:
        raise ConfigError(f"{source}: key `printer.path`: required when printer.kind = \"file\"")
    rc = cfg.recovery
    if rc.stale_after_minutes <= 0 or rc.tickets_per_minute < 0 or rc.batch_size < 1 or rc.max_print_attempts < 1:
        raise ConfigError(f"{source}: key `recovery`: stale_after_minutes > 0, tickets_per_minute >= 0,"
                          " batch_size >= 1 and max_print_attempts >= 1 are required")
    if cfg.wix.poll_interval is not None and cfg.wix.poll_interval < 0:
        raise ConfigError(f"{source}: key `wix.poll_interval`: must be >= 0 (0 disables polling)")
    if cfg.wix.intake == "poll" and cfg.wix.poll_interval is not None and 0 < cfg.wix.poll_interval < 2:
        raise ConfigError(f"{source}: key `wix.poll_interval`: at least 2 s in poll mode (Wix rate limits)")
    if cfg.mail.enabled and not (cfg.mail.host and cfg.mail.sender and cfg.mail.recipients):
        raise ConfigError(f"{source}: key `mail`: enabled but host, sender or recipients missing")
