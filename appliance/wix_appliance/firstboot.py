"""First boot: turn /boot/firmware/wix-printer.toml into the box's configuration.

`python -m wix_appliance firstboot` runs on every boot (wix-printer-firstboot.service,
before the network, SSH and the service) and does something only when the file changed:

1. read and check EVERY value (unknown keys, types, host name, time zone, Wi-Fi, keys),
   then render the roles' own templates (shipped in the image by playbooks/image.yml
   with the image play's variables, vars.json) with the owner's values on top, and let
   the release's `wix-printer config check` read the result; only then
2. write them all (config.toml, secrets.toml, the unit, hostname, hosts, time zone,
   authorized_keys, Wi-Fi), and
3. rewrite the boot file with its secrets blanked ("" = keep what the box has), so no
   password stays on the FAT partition any PC can read.

A broken file changes nothing: wix-printer-error.txt on the boot partition, the console,
the login prompt and the status page (through <state>/boot-config-error.txt) say which
line and key to fix. Every boot also makes missing SSH host keys; the first one grows the
root partition and filesystem to the card (systemd makes the machine-id: the image ships
an empty one).

Why render the roles' templates instead of running ansible-playbook -c local: the box
stays small (no Ansible on it), a Pi 3 applies the file in a second instead of a minute,
and the files are still exactly what a fleet converge renders from the same variables, so
the integrator's first `site.yml` run finds nothing to change but what the inventory says.
"""

from __future__ import annotations

import argparse
import difflib
import grp
import hashlib
import json
import os
import pwd
import re
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import tunnel

BOOT_FILE = "wix-printer.toml"
ERROR_FILE = "wix-printer-error.txt"
MIN_PASSWORD = 8  # the status page's minimum (wix_printer.web.auth.MIN_PASSWORD)

# The role templates first boot renders: (template under the data dir, target, owner, group, mode).
# Owners and modes are those the roles give them.
TEMPLATES: list[tuple[str, str, str, str, int]] = [
    ("etc/hostname.j2", "etc/hostname", "root", "root", 0o644),
    ("etc/hosts.j2", "etc/hosts", "root", "root", 0o644),
    ("etc/wix-printer/config.toml.j2", "etc/wix-printer/config.toml", "root", "wixprint", 0o640),
    ("etc/wix-printer/secrets.toml.j2", "etc/wix-printer/secrets.toml", "wixprint", "wixprint", 0o600),
    ("etc/systemd/system/wix-printer.service.j2", "etc/systemd/system/wix-printer.service", "root", "root", 0o644),
]

SSH_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
                     r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$")
HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


# --- the file's schema ----------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    kind: type | tuple[type, ...]
    secret: bool = False
    choices: tuple[str, ...] = ()
    hint: str = ""


SCHEMA: dict[str, dict[str, Key]] = {
    "box": {
        "hostname": Key(str, hint='letters, digits and "-", e.g. "boxi-kitchen"'),
        "timezone": Key(str, hint='e.g. "Europe/Berlin"'),
        "admin_password": Key(str, secret=True, hint=f"at least {MIN_PASSWORD} characters"),
        "ssh_keys": Key(list, hint='a list of public keys: ["ssh-ed25519 AAAA... name"]'),
    },
    "network": {
        "kind": Key(str, choices=("ethernet", "wifi")),
        "wifi_country": Key(str, hint='two letters, e.g. "DE"'),
        "wifi_ssid": Key(str),
        "wifi_passphrase": Key(str, secret=True, hint="8 to 63 characters"),
    },
    "wix": {
        "public_key": Key(str, hint="the block from -----BEGIN PUBLIC KEY----- to -----END PUBLIC KEY-----"),
        "api_key": Key(str, secret=True),
        "site_id": Key(str),
        "instance_id": Key(str),
        "intake": Key(str, choices=("poll", "webhook", "both")),
        "poll_interval": Key((int, float), hint="seconds, 0 = webhooks only"),
        # For test boxes and the relay: where the Wix API answers.
        "base_url": Key(str, hint='e.g. "https://www.wixapis.com"'),
    },
    "printer": {
        "kind": Key(str, choices=("network", "usb")),
        "host": Key(str, hint='the printer\'s address, e.g. "192.168.1.50"'),
        "port": Key(int, hint="a whole number from 1 to 65535"),
    },
    "mail": {
        "enabled": Key(bool, hint="true or false"),
        "host": Key(str),
        "port": Key(int, hint="a whole number from 1 to 65535"),
        "security": Key(str, choices=("starttls", "tls", "none")),
        "username": Key(str),
        "password": Key(str, secret=True),
        "sender": Key(str),
        "recipients": Key(list, hint='a list: ["owner@example.org"]'),
    },
    "restaurant": {
        "name": Key(str),
        "address": Key(str),
        "phone": Key(str),
        "language": Key(str, choices=("de", "en")),
    },
    "tunnel": {k: Key(kind, secret=secret, hint=hint) for k, (kind, secret, hint) in tunnel.KEYS.items()},
}

SECRETS = [(s, k) for s, keys in SCHEMA.items() for k, spec in keys.items() if spec.secret]


class ConfigError(Exception):
    """One or more problems with the boot file, each naming its line and key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _line_of(text: str, section: str, key: str | None = None) -> int | None:
    """Line number of `[section]` or of `key =` inside it (tomllib keeps no positions)."""
    current = ""
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        m = re.match(r"^\[\s*([A-Za-z0-9_.-]+)\s*\]", line)
        if m:
            current = m.group(1)
            if key is None and current == section:
                return n
            continue
        if key is not None and current == section and re.match(rf"^{re.escape(key)}\s*=", line):
            return n
    return None


def _where(text: str, section: str, key: str | None = None) -> str:
    n = _line_of(text, section, key)
    name = f"{section}.{key}" if key else f"[{section}]"
    return f"line {n}: {name}" if n else name


def decode(raw: bytes) -> str:
    """UTF-8 (with or without the BOM Notepad adds); an old Windows editor's cp1252 too."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def parse(text: str, zoneinfo: Path) -> dict[str, dict[str, Any]]:
    """The checked settings, or ConfigError listing every problem at once."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"not valid TOML: {e} (text values need \"double quotes\")"]) from None
    problems: list[str] = []
    out: dict[str, dict[str, Any]] = {s: {} for s in SCHEMA}
    for section, values in data.items():
        if section not in SCHEMA:
            problems.append(f"{_where(text, section)}: unknown section (known: {', '.join(SCHEMA)})")
            continue
        if not isinstance(values, dict):
            problems.append(f"{section}: must be a [{section}] section")
            continue
        for key, value in values.items():
            spec = SCHEMA[section].get(key)
            where = _where(text, section, key)
            if spec is None:
                close = difflib.get_close_matches(key, list(SCHEMA[section]), n=1, cutoff=0.6)
                also = f" (did you mean `{close[0]}`?)" if close else ""
                problems.append(f"{where}: unknown key{also}")
                continue
            if (isinstance(value, bool) and spec.kind is not bool) or not isinstance(value, spec.kind):
                want = {str: "text in double quotes", list: "a list [...]", bool: "true or false",
                        int: "a whole number"}.get(spec.kind if isinstance(spec.kind, type) else int, "a number")
                problems.append(f"{where}: must be {want}, not {value!r}" + (f" ({spec.hint})" if spec.hint else ""))
                continue
            if spec.choices and value not in spec.choices:
                problems.append(f"{where}: must be one of {', '.join(repr(c) for c in spec.choices)}, not {value!r}")
                continue
            out[section][key] = value.strip() if isinstance(value, str) and key != "public_key" else value
    problems += _check_values(text, out, zoneinfo)
    if problems:
        raise ConfigError(problems)
    return out


def _check_values(text: str, s: dict[str, dict[str, Any]], zoneinfo: Path) -> list[str]:
    p: list[str] = []

    def bad(section: str, key: str, msg: str) -> None:
        p.append(f"{_where(text, section, key)}: {msg}")

    box, net, wix, printer, mail = s["box"], s["network"], s["wix"], s["printer"], s["mail"]
    host = box.get("hostname", "")
    if host and not HOSTNAME.match(host.lower()):
        bad("box", "hostname", f"{host!r} is not a host name (letters, digits and \"-\", at most 63)")
    elif host:
        box["hostname"] = host.lower()
    tz = box.get("timezone", "")
    if tz and (".." in tz or tz.startswith("/") or not (zoneinfo / tz).is_file()):
        bad("box", "timezone", f"unknown time zone {tz!r} (e.g. \"Europe/Berlin\")")
    pw = box.get("admin_password", "")
    if pw and len(pw) < MIN_PASSWORD:
        bad("box", "admin_password", f"too short: at least {MIN_PASSWORD} characters")
    for i, k in enumerate(box.get("ssh_keys", [])):
        if not isinstance(k, str) or not SSH_KEY.match(k.strip()):
            bad("box", "ssh_keys", f"entry {i + 1} is not an SSH public key (\"ssh-ed25519 AAAA... name\"); "
                "the .pub file's one line, never the private key")
    if net.get("kind") == "wifi":
        if not re.fullmatch(r"[A-Z]{2}", str(net.get("wifi_country", "")).upper()):
            bad("network", "wifi_country", "Wi-Fi needs the two-letter country code, e.g. \"DE\"")
        else:
            net["wifi_country"] = net["wifi_country"].upper()
        ssid = net.get("wifi_ssid", "")
        if not ssid or len(ssid.encode()) > 32:
            bad("network", "wifi_ssid", "Wi-Fi needs the network name (1 to 32 characters)")
        psk = net.get("wifi_passphrase", "")
        if psk and not (8 <= len(psk) <= 63 or re.fullmatch(r"[0-9a-fA-F]{64}", psk)):
            bad("network", "wifi_passphrase", "a Wi-Fi password has 8 to 63 characters")
    key = wix.get("public_key", "")
    if key and not re.search(r"-----BEGIN PUBLIC KEY-----.+-----END PUBLIC KEY-----", key, re.S):
        bad("wix", "public_key", "paste the whole block from -----BEGIN PUBLIC KEY----- to -----END PUBLIC KEY----- "
            "between triple quotes \"\"\" ... \"\"\"")
    if wix.get("poll_interval", 0) < 0:
        bad("wix", "poll_interval", "must be 0 or more seconds")
    url = wix.get("base_url", "")
    if url and not re.match(r"^https?://[^\s/]+", url):
        bad("wix", "base_url", "must start with https://")
    for section, d in (("printer", printer), ("mail", mail)):
        if "port" in d and not 1 <= d["port"] <= 65535:
            bad(section, "port", "must be a whole number from 1 to 65535")
    if printer.get("kind", "network") == "network" and printer.get("host", "") and \
            not re.fullmatch(r"[A-Za-z0-9.:-]+", printer["host"]):
        bad("printer", "host", f"{printer['host']!r} is not an address (e.g. \"192.168.1.50\")")
    for i, r in enumerate(mail.get("recipients", [])):
        if not isinstance(r, str) or "@" not in r:
            bad("mail", "recipients", f"entry {i + 1} is not a mail address")
    if mail.get("enabled"):
        for k in ("host", "sender"):
            if not mail.get(k):
                bad("mail", k, "needed when [mail] enabled = true")
        if not mail.get("recipients"):
            bad("mail", "recipients", "needed when [mail] enabled = true")
    return p


# --- from settings to the roles' variables -----------------------------------------------

def role_vars(s: dict[str, dict[str, Any]], defaults: Mapping[str, Any], old_secrets: Mapping[str, Any],
              hash_password: Callable[[str], str]) -> dict[str, Any]:
    """The image play's variables with the owner's values on top. Empty values keep the
    image's default; empty secrets keep what the box already has."""
    v = dict(defaults)
    box, wix, printer, mail, rest = (s[k] for k in ("box", "wix", "printer", "mail", "restaurant"))

    def put(var: str, value: Any) -> None:
        if value not in ("", None):
            v[var] = value

    put("base_hostname", box.get("hostname"))
    put("base_timezone", box.get("timezone"))
    put("printer_service_restaurant_timezone", box.get("timezone"))
    v["base_ssh_authorized_keys"] = [k.strip() for k in box.get("ssh_keys", [])]
    for k in ("public_key", "site_id", "instance_id", "intake", "poll_interval", "base_url"):
        put(f"printer_service_wix_{k}", wix.get(k))
    for k in ("kind", "host", "port"):
        put(f"printer_service_printer_{k}", printer.get(k))
    if "enabled" in mail:
        v["printer_service_mail_enabled"] = mail["enabled"]
    for k in ("host", "port", "security", "username", "sender", "recipients"):
        put(f"printer_service_mail_{k}", mail.get(k))
    for k in ("name", "address", "phone", "language"):
        put(f"printer_service_restaurant_{k}", rest.get(k))
    old_wix, old_mail, old_api = (old_secrets.get(k, {}) for k in ("wix", "mail", "api"))
    v["printer_service_wix_api_key"] = wix.get("api_key") or old_wix.get("api_key", "") or \
        defaults.get("printer_service_wix_api_key", "")
    v["printer_service_mail_password"] = mail.get("password") or old_mail.get("password", "") or \
        defaults.get("printer_service_mail_password", "")
    pw = box.get("admin_password", "")
    v["printer_service_api_admin_password_hash"] = hash_password(pw) if pw else \
        old_api.get("admin_password_hash", "") or defaults.get("printer_service_api_admin_password_hash", "")
    v["printer_service_api_token"] = old_api.get("token", "") or defaults.get("printer_service_api_token", "")
    return v


def _comment(text: str) -> str:
    """Ansible's `comment` filter with its defaults."""
    return "#\n" + "\n".join(f"# {line}" if line else "#" for line in str(text).splitlines()) + "\n#"


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "on", "1", "true", "y", "t")
    return bool(value)


def render(templates: Path, variables: Mapping[str, Any]) -> dict[str, str]:
    """Renders TEMPLATES with the few Ansible filters they use; a missing variable fails."""
    import jinja2  # the release venv has it (the service's web pages use it)

    env = jinja2.Environment(  # noqa: S701 - TOML and unit files, not HTML
        loader=jinja2.FileSystemLoader(str(templates)), undefined=jinja2.StrictUndefined,
        trim_blocks=True, keep_trailing_newline=True)
    env.filters.update(comment=_comment, to_json=lambda x: json.dumps(x), bool=_to_bool)
    return {target: env.get_template(src).render(**variables) for src, target, *_ in TEMPLATES}


# --- the boot file without its secrets --------------------------------------------------

_NOTE = "  # moved onto the box at first boot; type a new one here to change it"


def blank_secrets(text: str, settings: dict[str, dict[str, Any]]) -> str:
    """The owner's file, comments and all, with every secret value replaced by "".
    Falls back to a plain rewrite if the result would not read back the same."""
    nl = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    out: list[str] = []
    section = ""
    skip_until: str | None = None
    for raw in lines:
        if skip_until is not None:
            if skip_until in raw:
                skip_until = None
            continue
        line = raw.strip()
        m = re.match(r"^\[\s*([A-Za-z0-9_.-]+)\s*\]", line)
        if m:
            section = m.group(1)
        km = re.match(r"^(\s*)([A-Za-z0-9_-]+)(\s*=\s*)(.*)$", raw)
        if km and (section, km.group(2)) in SECRETS and settings.get(section, {}).get(km.group(2)):
            value = km.group(4)
            for q in ('"""', "'''"):
                if value.startswith(q) and value.count(q) == 1:
                    skip_until = q
            out.append(f'{km.group(1)}{km.group(2)}{km.group(3)}""{_NOTE}')
            continue
        out.append(raw)
    new = nl.join(out) + nl
    try:
        back = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        back = {}
    try:
        original = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        original = settings
    want = _without_secrets({s: dict(original.get(s, {})) for s in SCHEMA})
    got = {s: dict(back.get(s, {})) for s in SCHEMA}
    if got != want:
        return dump(_without_secrets(settings), nl)
    return new


def _without_secrets(settings: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    want = {s: dict(v) for s, v in settings.items()}
    for s, k in SECRETS:
        if want.get(s, {}).get(k):
            want[s][k] = ""
    return want


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)


def dump(settings: dict[str, dict[str, Any]], nl: str = "\n") -> str:
    lines = ["# wix-printer: rewritten at first boot without its secrets (\"\" = keep the box's)."]
    for section, values in settings.items():
        lines += ["", f"[{section}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    return nl.join(lines) + nl


# --- the system -------------------------------------------------------------------------

class System:
    """What first boot does to the running machine; tests replace it."""

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, check=check)  # noqa: S603 - fixed tools

    def set_hostname(self, name: str) -> None:
        self.run(["hostname", name], check=False)

    def daemon_reload(self) -> None:
        self.run(["systemctl", "daemon-reload"], check=False)

    def enable_now(self, unit: str, enable: bool) -> None:
        if enable:
            self.run(["systemctl", "enable", unit], check=False)
            self.run(["systemctl", "start", "--no-block", unit], check=False)
        else:
            self.run(["systemctl", "disable", "--now", unit], check=False)

    def ssh_host_keys(self, root: Path) -> bool:
        if list((root / "etc/ssh").glob("ssh_host_*_key")):
            return False
        self.run(["ssh-keygen", "-A"])
        return True

    def grow_root(self) -> str:
        """growpart + resize2fs on the partition holding /."""
        src = self.run(["findmnt", "-n", "-o", "SOURCE", "/"]).stdout.strip()
        part = Path(os.path.realpath(src)).name
        sys_part = Path("/sys/class/block") / part
        if not (sys_part / "partition").exists():
            return f"{src} is not a partition: not grown"
        number = (sys_part / "partition").read_text().strip()
        disk = Path(os.path.realpath(sys_part)).parent.name
        before = os.statvfs("/")
        gp = self.run(["growpart", f"/dev/{disk}", number], check=False)
        if gp.returncode not in (0, 1):  # 1: NOCHANGE, already fills the disk
            return f"growpart failed: {gp.stdout.strip()} {gp.stderr.strip()}"
        self.run(["resize2fs", f"/dev/{part}"], check=False)
        after = os.statvfs("/")
        return (f"root filesystem {before.f_blocks * before.f_frsize // 2**20} MiB -> "
                f"{after.f_blocks * after.f_frsize // 2**20} MiB")

    def config_check(self, wix_printer: Path, config: Path) -> str | None:
        """The release's own verdict on the rendered config, or None when it is fine."""
        if not wix_printer.exists():
            return None
        r = self.run([str(wix_printer), "config", "check", str(config)], check=False)
        return None if r.returncode == 0 else (r.stderr.strip() or r.stdout.strip())

    def hash_password(self, password: str) -> str:
        from wix_printer.web.auth import hash_password

        return hash_password(password)


@dataclass
class Paths:
    root: Path = Path("/")
    boot: Path = Path("/boot/firmware")
    data: Path = Path("/usr/share/wix-printer/firstboot")
    state: Path = Path("/var/lib/wix-printer-firstboot")
    # The service's state folder: the status page shows boot-config-error.txt from here.
    service_state: Path = Path("/var/lib/wix-printer")
    wix_printer: Path = Path("/opt/wix-printer/current/bin/wix-printer")

    def at(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")


@dataclass
class Result:
    applied: bool = False
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _ids(root: Path, user: str, group: str) -> tuple[int, int] | None:
    """uid/gid from the target's own passwd/group files (the box's, also under a test root)."""
    try:
        uid = next(int(line.split(":")[2]) for line in (root / "etc/passwd").read_text().splitlines()
                   if line.split(":")[0] == user)
        gid = next(int(line.split(":")[2]) for line in (root / "etc/group").read_text().splitlines()
                   if line.split(":")[0] == group)
    except (OSError, StopIteration, IndexError, ValueError):
        if root == Path("/"):
            try:
                return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid
            except KeyError:
                return None
        return None
    return uid, gid


def write_file(path: Path, content: str | bytes, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Atomically: a reader sees the old file or the new one, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content.encode() if isinstance(content, str) else content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if owner is not None and os.geteuid() == 0:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _wifi_files(s: dict[str, dict[str, Any]], old_conf: str) -> tuple[str, str] | None:
    net = s["network"]
    if net.get("kind") != "wifi":
        return None
    psk = net.get("wifi_passphrase", "")
    if not psk:
        m = re.search(r'^\s*ssid=(".*")\s*$', old_conf, re.M)
        old = re.search(r"^\s*psk=(\S+)\s*$", old_conf, re.M)
        if not (m and old and json.loads(m.group(1)) == net["wifi_ssid"]):
            raise ConfigError([f"network.wifi_passphrase: needed for Wi-Fi {net['wifi_ssid']!r} "
                               "(the box has no password stored for it)"])
        psk_line = f"psk={old.group(1)}"
    elif re.fullmatch(r"[0-9a-fA-F]{64}", psk):
        psk_line = f"psk={psk.lower()}"
    else:
        psk_line = f"psk={json.dumps(psk, ensure_ascii=False)}"
    conf = ("# Written by wix-printer first boot from wix-printer.toml.\n"
            "ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\nupdate_config=0\n"
            f"country={net['wifi_country']}\n\nnetwork={{\n"
            f"    ssid={json.dumps(net['wifi_ssid'], ensure_ascii=False)}\n    {psk_line}\n    key_mgmt=WPA-PSK SAE\n"
            "    ieee80211w=1\n}\n")
    network = ("# Written by wix-printer first boot: Wi-Fi by DHCP.\n[Match]\nName=wl*\n\n[Network]\nDHCP=yes\n"
               "LinkLocalAddressing=ipv6\n")
    return conf, network


WPA_CONF = "etc/wpa_supplicant/wpa_supplicant-wlan0.conf"
WIFI_NETWORK = "etc/systemd/network/25-wireless.network"
WIFI_UNIT = "wpa_supplicant@wlan0.service"


def apply(paths: Paths, system: System) -> Result:
    res = Result()
    paths.state.mkdir(parents=True, exist_ok=True, mode=0o700)
    if system.ssh_host_keys(paths.root):
        res.notes.append("made new SSH host keys")
    if not (paths.state / "grown").exists():
        res.notes.append(system.grow_root())
        write_file(paths.state / "grown", time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()), 0o644)
    boot_file = paths.boot / BOOT_FILE
    if not boot_file.exists():
        res.notes.append(f"no {boot_file}: the box keeps its settings")
        return res
    raw = boot_file.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    applied = paths.state / "applied.sha256"
    if applied.exists() and applied.read_text().strip() == digest:
        res.notes.append(f"{BOOT_FILE} unchanged since it was applied")
        return res
    text = decode(raw)
    try:
        staged = stage(text, paths, system)
    except ConfigError as e:
        res.errors = e.problems
        report_errors(paths, e.problems)
        return res
    settings, files, wifi = staged
    # Everything is checked and rendered: now write it all.
    for _src, target, user, group, mode in TEMPLATES:
        write_file(paths.at(target), files[target], mode, _ids(paths.root, user, group))
    tz = settings["box"].get("timezone")
    if tz:
        link = paths.at("etc/localtime")
        tmp = link.with_name(".localtime.tmp")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(f"/usr/share/zoneinfo/{tz}")
        os.replace(tmp, link)
        write_file(paths.at("etc/timezone"), tz + "\n", 0o644)
    keys = settings["box"].get("ssh_keys", [])
    ssh_dir = paths.at("root/.ssh")
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_file(ssh_dir / "authorized_keys",
               "# From wix-printer.toml ([box] ssh_keys), applied at boot.\n" + "".join(f"{k.strip()}\n" for k in keys),
               0o600)
    for rel, content, mode, own in tunnel.files(settings["tunnel"]) if settings["tunnel"] else []:
        write_file(paths.at(rel), content, mode, _ids(paths.root, tunnel.USER, tunnel.USER) if own else None)
    if wifi is None:
        paths.at(WPA_CONF).unlink(missing_ok=True)
        paths.at(WIFI_NETWORK).unlink(missing_ok=True)
    else:
        write_file(paths.at(WPA_CONF), wifi[0], 0o600)
        write_file(paths.at(WIFI_NETWORK), wifi[1], 0o644)
    host = files["etc/hostname"].strip().splitlines()[-1].strip()
    system.set_hostname(host)
    system.daemon_reload()
    system.enable_now(WIFI_UNIT, wifi is not None)
    if settings["tunnel"]:
        system.enable_now(tunnel.UNIT, True)
    # Only now the secrets leave the FAT partition: the box has them.
    new_text = blank_secrets(text, settings)
    nl_bytes = new_text.encode()
    if nl_bytes != raw:
        write_file(boot_file, nl_bytes, 0o644)
    write_file(applied, hashlib.sha256(nl_bytes).hexdigest() + "\n", 0o600)
    clear_errors(paths)
    res.applied = True
    res.notes.append(f"applied {BOOT_FILE}: host name {host}, printer {files_summary(settings)}")
    return res


def files_summary(s: dict[str, dict[str, Any]]) -> str:
    p = s["printer"]
    return "usb" if p.get("kind") == "usb" else f"{p.get('host') or '(not set)'}:{p.get('port', 9100)}"


def stage(text: str, paths: Paths, system: System) -> tuple[dict[str, dict[str, Any]], dict[str, str],
                                                            tuple[str, str] | None]:
    """Check everything and render every file, touching nothing."""
    settings = parse(text, paths.at("usr/share/zoneinfo"))
    if bad := tunnel.check(settings["tunnel"], paths.at(tunnel.KEY).exists()):
        raise ConfigError([f"{_where(text, 'tunnel', k)}: {m}" for k, m in bad])
    defaults = json.loads((paths.data / "vars.json").read_text())
    old_secrets: dict[str, Any] = {}
    secrets_file = paths.at("etc/wix-printer/secrets.toml")
    if secrets_file.exists():
        try:
            old_secrets = tomllib.loads(secrets_file.read_text())
        except (OSError, tomllib.TOMLDecodeError):
            old_secrets = {}
    old_wpa = paths.at(WPA_CONF).read_text() if paths.at(WPA_CONF).exists() else ""
    wifi = _wifi_files(settings, old_wpa)
    variables = role_vars(settings, defaults, old_secrets, system.hash_password)
    variables.setdefault("ansible_managed", "Written by wix-printer first boot from wix-printer.toml "
                                            "with the roles' template")
    try:
        files = render(paths.data / "templates", variables)
    except Exception as e:  # a template the image shipped does not fit its vars: say so
        raise ConfigError([f"internal: rendering the roles' templates failed: {e}"]) from None
    with tempfile.TemporaryDirectory(prefix="wix-firstboot-") as tmp:
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(files["etc/wix-printer/config.toml"])
        sec = Path(tmp) / "secrets.toml"
        sec.write_text(files["etc/wix-printer/secrets.toml"])
        os.chmod(sec, 0o600)
        verdict = system.config_check(paths.wix_printer, cfg)
    if verdict:
        raise ConfigError([f"the service refuses the result: {verdict.replace(str(cfg), BOOT_FILE)}"])
    return settings, files, wifi


def report_errors(paths: Paths, problems: list[str]) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    body = [f"wix-printer could not use {BOOT_FILE} ({stamp}). Nothing was changed.",
            "Fix these lines, save the file, and start the box again:", ""]
    body += [f"  * {p}" for p in problems]
    body += ["", "Die Datei wix-printer.toml enthält Fehler; es wurde nichts geändert. Bitte die genannten "
             "Zeilen korrigieren und die Box neu starten."]
    text = "\n".join(body) + "\n"
    try:
        # Notepad-friendly line ends on the partition a Windows PC reads.
        write_file(paths.boot / ERROR_FILE, text.replace("\n", "\r\n"), 0o644)
    except OSError as e:
        print(f"could not write {paths.boot / ERROR_FILE}: {e}", file=sys.stderr)
    ids = _ids(paths.root, "wixprint", "wixprint")
    if not paths.service_state.is_dir() and ids is not None:
        # A new box: the service's StateDirectory= does not exist before its first start.
        paths.service_state.mkdir(mode=0o750, parents=True)
        if os.geteuid() == 0:
            os.chown(paths.service_state, *ids)
    if paths.service_state.is_dir():
        write_file(paths.service_state / "boot-config-error.txt", text, 0o640, ids)
    issue = paths.at("etc/issue.d/wix-printer.issue")
    if issue.parent.is_dir():
        write_file(issue, "\n".join(["", "*** wix-printer.toml has errors (see wix-printer-error.txt):", *problems,
                                     "", ""]).replace("\\", "\\\\"), 0o644)
    print(text, file=sys.stderr)


def clear_errors(paths: Paths) -> None:
    for p in (paths.boot / ERROR_FILE, paths.service_state / "boot-config-error.txt",
              paths.at("etc/issue.d/wix-printer.issue")):
        p.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m wix_appliance firstboot", description=__doc__.split("\n\n")[0])
    ap.add_argument("--boot-dir", type=Path, default=Paths.boot)
    ap.add_argument("--root", type=Path, default=Paths.root, help="the system to configure (tests)")
    ap.add_argument("--check", type=Path, metavar="FILE", help="only check a wix-printer.toml and exit")
    args = ap.parse_args(argv)
    paths = Paths(root=args.root, boot=args.boot_dir)
    if args.root != Path("/"):
        paths.data = paths.at(str(Paths.data))
        paths.state = paths.at(str(Paths.state))
        paths.service_state = paths.at(str(Paths.service_state))
    if args.check:
        try:
            parse(decode(args.check.read_bytes()), Path("/usr/share/zoneinfo"))
        except ConfigError as e:
            print("\n".join(e.problems), file=sys.stderr)
            return 1
        print(f"{args.check}: ok")
        return 0
    res = apply(paths, System())
    for n in res.notes:
        print(f"firstboot: {n}")
    return 1 if res.errors else 0
