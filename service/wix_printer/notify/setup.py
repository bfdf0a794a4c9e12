"""`wix-printer setup-mail`: provider presets, connection and login test, test mail,
then the [mail] section of config.toml and the password in secrets.toml (0600).

Only the [mail] section of config.toml is rewritten, as text, so every other section
keeps its comments; the result is parsed and validated before it replaces the file.
Everything the prompts ask can be given as a flag, and `--non-interactive` turns a
missing answer into an error instead of a question (Ansible, image builds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from ..config import Config, MailConfig
from .kinds import Kind
from .smtp import Connection, SmtpFailure, build_message
from .templates import Renderer

DEFAULT_CONFIG = "/etc/wix-printer/config.toml"

# (label, host, port, security, hint shown before the password prompt)
PRESETS: dict[str, tuple[str, str, int, str, str]] = {
    "gmail": ("Gmail", "smtp.gmail.com", 587, "starttls",
              "Gmail needs an app password (Google account > Security > 2-step verification > App passwords)."),
    "outlook": ("Outlook.com / Hotmail", "smtp-mail.outlook.com", 587, "starttls",
                "Outlook.com may refuse plain passwords; an app password or a Microsoft 365 account works."),
    "microsoft365": ("Microsoft 365 (Exchange Online)", "smtp.office365.com", 587, "starttls",
                     "The mailbox needs 'Authenticated SMTP' enabled by the Microsoft 365 admin."),
    "yahoo": ("Yahoo Mail", "smtp.mail.yahoo.com", 465, "tls",
              "Yahoo needs an app password (Account security > Generate app password)."),
    "gmx": ("GMX", "mail.gmx.net", 587, "starttls",
            "GMX: enable 'POP3/IMAP Abruf' in the GMX settings, otherwise SMTP login is refused."),
    "webde": ("WEB.DE", "smtp.web.de", 587, "starttls",
              "WEB.DE: enable 'POP3/IMAP Abruf' in the WEB.DE settings, otherwise SMTP login is refused."),
    "custom": ("Other provider / local relay", "", 587, "starttls", ""),
}


class SetupError(Exception):
    pass


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", help=f"config file to update (default: $WIX_PRINTER_CONFIG or {DEFAULT_CONFIG})")
    p.add_argument("--secrets", help="secrets file for the password (default: secrets.toml beside the config)")
    p.add_argument("--provider", choices=sorted(PRESETS), help="preset for host, port and security")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--security", choices=["starttls", "tls", "none"])
    p.add_argument("--username", help="SMTP login (empty: no AUTH, e.g. a local relay)")
    pw = p.add_mutually_exclusive_group()
    pw.add_argument("--password-file", help="read the SMTP password from this file")
    pw.add_argument("--password-env", metavar="VAR", help="read the SMTP password from this environment variable")
    p.add_argument("--sender", help="From address (default: the username)")
    p.add_argument("--to", action="append", metavar="ADDR",
                   help="recipient; repeat or separate with commas")
    p.add_argument("--language", choices=["de", "en"])
    p.add_argument("--ca-file", help="extra CA certificate(s) to trust (PEM)")
    p.add_argument("--no-verify-tls", action="store_true", help="do not verify the server certificate (unsafe)")
    p.add_argument("--timeout", type=float, help="SMTP timeout in seconds (default 10)")
    p.add_argument("--non-interactive", action="store_true", help="never prompt; missing values are errors")
    p.add_argument("--no-test-mail", action="store_true", help="test connection and login, but send no mail")
    p.add_argument("--skip-test", action="store_true", help="write the files without contacting the server")
    p.add_argument("--no-migrate", action="store_true", help="do not run pending store migrations")


def run(args: argparse.Namespace) -> int:
    ask = _Prompter(interactive=not args.non_interactive)
    try:
        return asyncio.run(_setup(args, ask))
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print("\naborted, nothing written", file=sys.stderr)
        return 130


class _Prompter:
    def __init__(self, *, interactive: bool, read: Callable[[str], str] | None = None,
                 secret: Callable[[str], str] | None = None) -> None:
        self.interactive = interactive
        # Looked up at call time so tests (and wrappers) can replace input/getpass.
        self.read = read or (lambda prompt: input(prompt))
        self.secret = secret or (lambda prompt: getpass.getpass(prompt))

    def value(self, label: str, given: Any, default: Any, *, required: bool = True, flag: str = "") -> Any:
        if given is not None:
            return given
        if not self.interactive:
            if required and default in (None, "", []):
                raise SetupError(f"{label}: missing (pass {flag})" if flag else f"{label}: missing")
            return default
        while True:
            shown = f" [{default}]" if default not in (None, "") else ""
            answer = self.read(f"{label}{shown}: ").strip()
            if answer:
                return answer
            if default not in (None, "") or not required:
                return default
            print("  (required)")

    def choose(self, label: str, options: dict[str, str], given: str | None, default: str) -> str:
        if given is not None:
            return given
        if not self.interactive:
            return default
        keys = list(options)
        for i, k in enumerate(keys, 1):
            print(f"  {i}) {options[k]}")
        while True:
            answer = self.read(f"{label} [{keys.index(default) + 1}]: ").strip().lower()
            if not answer:
                return default
            if answer.isdigit() and 1 <= int(answer) <= len(keys):
                return keys[int(answer) - 1]
            if answer in options:
                return answer
            print("  ?")

    def yes(self, label: str, default: bool = True) -> bool:
        if not self.interactive:
            return default
        answer = self.read(f"{label} [{'J/n' if default else 'j/N'}]: ").strip().lower()
        return default if not answer else answer in ("j", "ja", "y", "yes")


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SetupError(f"{path}: not valid TOML ({e}); fix it first") from None


def _password(args: argparse.Namespace, ask: _Prompter, existing: str, username: str) -> str:
    if args.password_file:
        try:
            return Path(args.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as e:
            raise SetupError(f"--password-file: {e}") from None
    if args.password_env:
        value = os.environ.get(args.password_env)
        if value is None:
            raise SetupError(f"--password-env: ${args.password_env} is not set")
        return value
    if not username:
        return ""
    if not ask.interactive:
        if existing:
            return existing
        raise SetupError("password: missing (pass --password-file or --password-env)")
    keep = " (Enter keeps the saved one)" if existing else ""
    while True:
        pw = ask.secret(f"Password for {username}{keep}: ")
        if pw or existing:
            return pw or existing
        print("  (required)")


def gather(args: argparse.Namespace, ask: _Prompter, current: dict[str, Any], current_password: str) -> MailConfig:
    """Flags first, then prompts, then the config already there, then the preset."""
    cur = {**msgspec.structs.asdict(MailConfig()), **current}
    labels = {k: v[0] for k, v in PRESETS.items()}
    default_provider = next((k for k, v in PRESETS.items() if v[1] and v[1] == cur.get("host")), "custom")
    provider = ask.choose("Mail provider", labels, args.provider, default_provider)
    _, p_host, p_port, p_sec, hint = PRESETS[provider]
    keep = provider == default_provider
    host = ask.value("SMTP server", args.host, cur["host"] if keep and cur["host"] else p_host, flag="--host")
    port = int(ask.value("Port", args.port, cur["port"] if keep else p_port, flag="--port"))
    security = ask.value("Security (starttls, tls, none)", args.security,
                         cur["security"] if keep else ("tls" if port == 465 else p_sec))
    if security not in ("starttls", "tls", "none"):
        raise SetupError(f"security: {security!r} is not starttls, tls or none")
    if hint and ask.interactive:
        print(f"  note: {hint}")
    username = ask.value("Login (usually your e-mail address; empty for none)", args.username,
                         cur["username"], required=provider != "custom", flag="--username") or ""
    password = _password(args, ask, current_password, username)
    sender = ask.value("Sender address", args.sender, cur["sender"] or username, flag="--sender")
    given_to = [a.strip() for t in args.to or [] for a in t.split(",") if a.strip()] or None
    default_to = ", ".join(cur["recipients"]) or sender
    to = given_to or [a.strip() for a in
                      str(ask.value("Send alerts to (comma-separated)", None, default_to, flag="--to")).split(",")
                      if a.strip()]
    language = ask.value("Language (de, en)", args.language, cur["language"])
    for addr in [sender, *to]:
        if not re.fullmatch(r"[^@\s,]+@[^@\s,]+", addr):
            raise SetupError(f"not an e-mail address: {addr!r}")
    data = {**current, "enabled": True, "host": host, "port": port, "security": security, "username": username,
            "password": password, "sender": sender, "recipients": to, "language": language}
    if args.ca_file is not None:
        data["ca_file"] = args.ca_file
    if args.no_verify_tls:
        data["verify_tls"] = False
    if args.timeout is not None:
        data["timeout"] = args.timeout
    try:
        return msgspec.convert(data, MailConfig)
    except msgspec.ValidationError as e:
        raise SetupError(f"mail settings: {e}") from None


async def probe_server(mail: MailConfig, restaurant: str, *, send: bool, timezone: str = "Europe/Berlin") -> None:
    import time

    async with Connection(mail) as conn:
        if not send:
            return
        renderer = Renderer(mail, restaurant, timezone)
        now = time.time()
        rendered = renderer.render(Kind.TEST, "alert", renderer.context(Kind.TEST, "alert", {}, started_at=now,
                                                                         now=now))
        msg = build_message(mail, rendered, key=f"test@{now}", to=list(mail.recipients), now=now)
        await conn.send(msg, list(mail.recipients))


# --- writing ----------------------------------------------------------------------------
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        # A JSON string is a valid TOML basic string (same escapes).
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")


def replace_section(text: str, section: str, body: dict[str, Any], comment: str = "") -> str:
    """`text` with table [section] replaced by `body` (appended when absent)."""
    lines = text.splitlines(keepends=True)
    start = end = None
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if not m:
            continue
        name = m.group(1).strip()
        if start is None and name == section:
            start = i
        elif start is not None and not name.startswith(section + "."):
            end = i
            break
    block = ([f"# {comment}\n"] if comment else []) + [f"[{section}]\n"]
    block += [f"{k} = {_toml_value(v)}\n" for k, v in body.items()]
    if start is None:
        prefix = "".join(lines)
        if prefix and not prefix.endswith("\n"):
            prefix += "\n"
        return prefix + ("\n" if prefix.strip() else "") + "".join(block)
    end = len(lines) if end is None else end
    # Keep blank lines and comments that lead into the next section with it.
    while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    tail = lines[end:]
    return "".join(lines[:start]) + "".join(block) + ("\n" if tail and tail[0].strip() else "") + "".join(tail)


def set_top_level(text: str, key: str, value: Any) -> str:
    """Set a key before the first table (where TOML top-level keys must be)."""
    lines = text.splitlines(keepends=True)
    new = f"{key} = {_toml_value(value)}\n"
    for i, line in enumerate(lines):
        if _HEADER.match(line):
            return "".join(lines[:i]) + new + "".join(lines[i:])
        if re.match(rf"^\s*{re.escape(key)}\s*=", line):
            lines[i] = new
            return "".join(lines)
    return "".join(lines) + new


def _write_atomic(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_files(config_path: Path, secrets_path: Path, mail: MailConfig) -> None:
    public = {k: v for k, v in msgspec.structs.asdict(mail).items() if k != "password"}
    # Keys still at their default stay out of the file, so later default changes apply.
    defaults = msgspec.structs.asdict(MailConfig())
    keep = {"enabled", "host", "port", "security", "username", "sender", "recipients", "language"}
    public = {k: v for k, v in public.items() if k in keep or v != defaults[k]}
    old_text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
    text = replace_section(old_text, "mail", public, "written by `wix-printer setup-mail`; password in secrets")
    if secrets_path.resolve() != (config_path.parent / "secrets.toml").resolve():
        text = set_top_level(text, "secrets_file", str(secrets_path))
    old_sec = secrets_path.read_text(encoding="utf-8") if secrets_path.exists() else ""
    sec_data = tomllib.loads(old_sec) if old_sec else {}
    sec_mail = {k: v for k, v in sec_data.get("mail", {}).items() if k != "password"}
    sec_text = replace_section(old_sec, "mail", {**sec_mail, "password": mail.password})

    # Both files must still parse, every other section must be untouched, and the merged
    # result must be a valid config, before anything on disk changes.
    before, after = _read_text_toml(old_text), _read_text_toml(text)
    for name in set(before) | set(after):
        if name not in ("mail", "secrets_file") and before.get(name) != after.get(name):
            raise SetupError(f"internal error: section [{name}] would change; nothing written")
    merged = {**after, "mail": {**after.get("mail", {}), **tomllib.loads(sec_text).get("mail", {})}}
    try:
        msgspec.convert(merged, Config, str_keys=True)
    except msgspec.ValidationError as e:
        raise SetupError(f"{config_path}: the result would not be a valid config: {e}") from None

    config_path.parent.mkdir(parents=True, exist_ok=True)
    secrets_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(secrets_path, sec_text, 0o600)
    mode = config_path.stat().st_mode & 0o777 if config_path.exists() else 0o640
    _write_atomic(config_path, text, mode)


def _read_text_toml(text: str) -> dict[str, Any]:
    return tomllib.loads(text) if text.strip() else {}


async def migrate(config_path: Path) -> None:
    from ..config import load_config
    from ..store import Store

    cfg = load_config(config_path)
    store = Store(cfg.store.path)
    await store.open()  # opening migrates to the latest schema
    await store.close()


async def _setup(args: argparse.Namespace, ask: _Prompter) -> int:
    config_path = Path(args.config or os.environ.get("WIX_PRINTER_CONFIG") or DEFAULT_CONFIG)
    raw = _read_toml(config_path)
    secrets_path = Path(args.secrets) if args.secrets else None
    if secrets_path is None and raw.get("secrets_file"):
        secrets_path = Path(raw["secrets_file"])
        if not secrets_path.is_absolute():
            secrets_path = config_path.parent / secrets_path
    secrets_path = secrets_path or config_path.parent / "secrets.toml"
    secrets = _read_toml(secrets_path)
    current = dict(raw.get("mail", {}))
    current.pop("password", None)
    mail = gather(args, ask, current, str(secrets.get("mail", {}).get("password", "")))
    restaurant = str(raw.get("restaurant", {}).get("name", "Restaurant"))
    timezone = str(raw.get("restaurant", {}).get("timezone", "Europe/Berlin"))

    if not args.skip_test:
        print(f"connecting to {mail.host}:{mail.port} ({mail.security})"
              f"{' and logging in as ' + mail.username if mail.username else ''} ...")
        try:
            await probe_server(mail, restaurant, send=not args.no_test_mail, timezone=timezone)
        except SmtpFailure as e:
            print(f"error: {e}", file=sys.stderr)
            hint = PRESETS.get(args.provider or "", ("", "", 0, "", ""))[4]
            if hint:
                print(f"hint: {hint}", file=sys.stderr)
            print("nothing written", file=sys.stderr)
            return 1
        print("login OK" + ("" if args.no_test_mail else f"; test mail sent to {', '.join(mail.recipients)}"))
    if ask.interactive and not ask.yes(f"Write {config_path} and {secrets_path}?"):
        print("nothing written")
        return 1
    write_files(config_path, secrets_path, mail)
    print(f"wrote [mail] to {config_path} and the password to {secrets_path} (mode 0600)")
    if not args.no_migrate:
        try:
            await migrate(config_path)
        except Exception as e:
            print(f"error: migrating the store failed: {e}", file=sys.stderr)
            return 1
        print("store schema up to date")
    return 0
