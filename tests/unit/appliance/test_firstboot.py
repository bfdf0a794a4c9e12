"""First boot against a fake root: the roles' real templates, the real `wix-printer config
check`, the real password hash; only the live-system calls (hostname, systemctl, growpart)
are recorded instead of run."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from wix_appliance import firstboot as fb

from wix_printer.web.auth import verify_password

ROOT = Path(__file__).resolve().parents[3]
WIX_PRINTER = ROOT / ".venv" / "bin" / "wix-printer"
PEM = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
                     capture_output=True, text=True, check=True).stdout
PUB = subprocess.run(["openssl", "pkey", "-pubout"], input=PEM, capture_output=True, text=True, check=True).stdout
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDxZwJb3Ti7rYhEKKNd9fHs2fA3fGSYSzXcdlT8wbjzF it@example.org"


class FakeSystem(fb.System):
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def set_hostname(self, name: str) -> None:
        self.calls.append(("hostname", name))

    def daemon_reload(self) -> None:
        self.calls.append(("daemon-reload",))

    def enable_now(self, unit: str, enable: bool) -> None:
        self.calls.append(("enable" if enable else "disable", unit))

    def ssh_host_keys(self, root: Path) -> bool:
        self.calls.append(("ssh-keygen",))
        return True

    def grow_root(self) -> str:
        self.calls.append(("grow",))
        return "grown"


def role_defaults() -> dict[str, Any]:
    """What playbooks/image.yml records in vars.json: the roles' defaults, resolved."""
    v: dict[str, Any] = {}
    for role in ("base", "printer_service"):
        v.update(yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()))
    v.update(base_hostname="wix-printer", base_live_system=False, printer_service_version="0.1.0",
             printer_service_http_host="0.0.0.0", printer_service_printer_host="",
             printer_service_restaurant_name="", printer_service_wheelhouse_dir="/x",
             printer_service_release_archive="/x.tar")
    assert not [k for k, x in v.items() if isinstance(x, str) and "{{" in x]
    return v


@pytest.fixture
def box(tmp_path: Path) -> fb.Paths:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(f"root:x:0:0::/root:/bin/sh\nwixprint:x:{os.getuid()}:{os.getgid()}::/:/x\n")
    (root / "etc/group").write_text(f"root:x:0:\nwixprint:x:{os.getgid()}:\n")
    (root / "etc/issue.d").mkdir()
    (root / "etc/ssh").mkdir()
    for tz in ("Europe/Berlin", "Europe/Zurich"):
        (root / "usr/share/zoneinfo" / tz).parent.mkdir(parents=True, exist_ok=True)
        (root / "usr/share/zoneinfo" / tz).write_bytes(b"TZif")
    data = root / "usr/share/wix-printer/firstboot"
    for src, *_ in fb.TEMPLATES:
        role = "base" if src.startswith("etc/host") else "printer_service"
        (data / "templates" / src).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "roles" / role / "templates" / src, data / "templates" / src)
    (data / "vars.json").write_text(json.dumps(role_defaults()))
    (root / "var/lib/wix-printer").mkdir(parents=True)
    boot = tmp_path / "boot"
    boot.mkdir()
    return fb.Paths(root=root, boot=boot, data=data, state=root / "var/lib/wix-printer-firstboot",
                    service_state=root / "var/lib/wix-printer", wix_printer=WIX_PRINTER)


def template() -> str:
    return (ROOT / "images" / "files" / "wix-printer.toml").read_text()


def owner_file(**sections: dict[str, Any]) -> str:
    """The shipped template with some values filled in, the way an owner edits it."""
    text = template()
    for section, values in sections.items():
        for key, value in values.items():
            val = fb._toml_value(value) if key != "public_key" else f'"""\n{value}"""'
            lines = text.splitlines()
            cur = ""
            for i, line in enumerate(lines):
                if line.startswith("["):
                    cur = line.strip("[]")
                elif cur == section and line.startswith(f"{key} ="):
                    lines[i] = f"{key} = {val}"
                    break
            else:
                raise AssertionError(f"{section}.{key} not in the template")
            text = "\n".join(lines) + "\n"
    return text


FULL = {
    "box": {"hostname": "Boxi-Kitchen", "timezone": "Europe/Zurich", "admin_password": "s3cret-kitchen",
            "ssh_keys": [KEY]},
    "network": {"kind": "wifi", "wifi_country": "de", "wifi_ssid": "Boxi Gäste", "wifi_passphrase": "wlan-pass-123"},
    "wix": {"public_key": PUB, "api_key": "IST.api-key-xyz", "site_id": "site-1"},
    "printer": {"kind": "network", "host": "192.168.1.77", "port": 9100},
    "mail": {"enabled": True, "host": "smtp.example.org", "password": "mail-pass", "sender": "box@example.org",
             "recipients": ["owner@example.org"]},
    "restaurant": {"name": "Imbiss am Boxi", "language": "en"},
}


def test_the_shipped_template_is_valid_and_applies_image_defaults(box: fb.Paths) -> None:
    (box.boot / fb.BOOT_FILE).write_text(template())
    sysm = FakeSystem()
    res = fb.apply(box, sysm)
    assert res.applied and not res.errors
    assert box.at("etc/hostname").read_text().strip().endswith("wix-printer")
    cfg = tomllib.loads(box.at("etc/wix-printer/config.toml").read_text())
    assert cfg["http"]["host"] == "0.0.0.0"
    assert cfg["printer"]["kind"] == "network"
    # Polling by default, at the service's own interval for it (every few seconds).
    assert cfg["wix"]["intake"] == "poll" and "poll_interval" not in cfg["wix"]
    assert ("grow",) in sysm.calls and ("ssh-keygen",) in sysm.calls
    assert (box.boot / fb.BOOT_FILE).read_text() == template()  # nothing secret to blank


def test_full_file_applied_and_secrets_leave_the_boot_partition(box: fb.Paths) -> None:
    (box.boot / fb.BOOT_FILE).write_text(owner_file(**FULL))
    sysm = FakeSystem()
    res = fb.apply(box, sysm)
    assert res.errors == [] and res.applied
    assert box.at("etc/hostname").read_text().splitlines()[-1] == "boxi-kitchen"
    assert "127.0.1.1\tboxi-kitchen" in box.at("etc/hosts").read_text()
    assert os.readlink(box.at("etc/localtime")) == "/usr/share/zoneinfo/Europe/Zurich"
    cfg = tomllib.loads(box.at("etc/wix-printer/config.toml").read_text())
    assert cfg["printer"]["host"] == "192.168.1.77"
    assert cfg["wix"]["site_id"] == "site-1" and "BEGIN PUBLIC KEY" in cfg["wix"]["public_key"]
    assert cfg["restaurant"] == {"name": "Imbiss am Boxi", "address": "", "phone": "", "timezone": "Europe/Zurich",
                                 "language": "en"}
    assert cfg["mail"]["enabled"] is True and cfg["mail"]["recipients"] == ["owner@example.org"]
    secrets_path = box.at("etc/wix-printer/secrets.toml")
    assert stat.S_IMODE(secrets_path.stat().st_mode) == 0o600
    sec = tomllib.loads(secrets_path.read_text())
    assert sec["wix"]["api_key"] == "IST.api-key-xyz" and sec["mail"]["password"] == "mail-pass"
    assert verify_password("s3cret-kitchen", sec["api"]["admin_password_hash"])
    assert stat.S_IMODE(box.at("etc/wix-printer/config.toml").stat().st_mode) == 0o640
    assert box.at("root/.ssh/authorized_keys").read_text().splitlines()[1] == KEY
    wpa = box.at(fb.WPA_CONF)
    assert stat.S_IMODE(wpa.stat().st_mode) == 0o600
    assert 'ssid="Boxi Gäste"' in wpa.read_text() and "country=DE" in wpa.read_text()
    assert ("hostname", "boxi-kitchen") in sysm.calls and ("enable", fb.WIFI_UNIT) in sysm.calls
    # The FAT file keeps its comments and every other value, but no secret.
    after = (box.boot / fb.BOOT_FILE).read_text()
    for secret in ("s3cret-kitchen", "wlan-pass-123", "IST.api-key-xyz", "mail-pass"):
        assert secret not in after
    assert "# wix-printer: the one file that configures this box." in after
    back = tomllib.loads(after)
    assert back["printer"]["host"] == "192.168.1.77" and back["box"]["admin_password"] == ""
    # The next boot sees its own rewrite: nothing to do.
    again = fb.apply(box, FakeSystem())
    assert not again.applied and "unchanged" in again.notes[-1]


def test_a_later_edit_with_blank_secrets_keeps_the_box_secrets(box: fb.Paths) -> None:
    (box.boot / fb.BOOT_FILE).write_text(owner_file(**FULL))
    assert fb.apply(box, FakeSystem()).applied
    text = (box.boot / fb.BOOT_FILE).read_text().replace('host = "192.168.1.77"', 'host = "192.168.1.78"')
    (box.boot / fb.BOOT_FILE).write_text(text)
    assert fb.apply(box, FakeSystem()).applied
    sec = tomllib.loads(box.at("etc/wix-printer/secrets.toml").read_text())
    assert sec["wix"]["api_key"] == "IST.api-key-xyz"
    assert verify_password("s3cret-kitchen", sec["api"]["admin_password_hash"])
    assert "psk=\"wlan-pass-123\"" in box.at(fb.WPA_CONF).read_text()
    assert tomllib.loads(box.at("etc/wix-printer/config.toml").read_text())["printer"]["host"] == "192.168.1.78"


def test_broken_file_changes_nothing_and_says_which_line(box: fb.Paths) -> None:
    text = owner_file(**FULL).replace('port = 9100', 'port = 9100\nhots = "x"')
    text = text.replace('timezone = "Europe/Zurich"', 'timezone = "Europe/Zürich"')
    (box.boot / fb.BOOT_FILE).write_text(text)
    sysm = FakeSystem()
    res = fb.apply(box, sysm)
    assert not res.applied
    line = next(i for i, x in enumerate(text.splitlines(), 1) if x.startswith("hots"))
    assert f"line {line}: printer.hots: unknown key (did you mean `host`?)" in res.errors
    assert any("box.timezone: unknown time zone 'Europe/Zürich'" in e for e in res.errors)
    assert not box.at("etc/wix-printer/config.toml").exists()
    assert not box.at("etc/hostname").exists() and not box.at(fb.WPA_CONF).exists()
    assert (box.boot / fb.BOOT_FILE).read_text() == text  # secrets stay until the file works
    err = (box.boot / fb.ERROR_FILE).read_bytes()
    assert b"\r\n" in err and b"printer.hots" in err
    assert "printer.hots" in (box.service_state / "boot-config-error.txt").read_text()
    assert "printer.hots" in box.at("etc/issue.d/wix-printer.issue").read_text()
    assert not [c for c in sysm.calls if c[0] in ("hostname", "enable", "daemon-reload")]
    # Fixed: applied, the error reports disappear.
    (box.boot / fb.BOOT_FILE).write_text(owner_file(**FULL))
    assert fb.apply(box, FakeSystem()).applied
    assert not (box.boot / fb.ERROR_FILE).exists()
    assert not (box.service_state / "boot-config-error.txt").exists()


@pytest.mark.parametrize(("edit", "message"), [
    (('port = 9100', 'port = "abc"'), "printer.port: must be a whole number, not 'abc'"),
    (('kind = "network"', 'kind = "bluetooth"'), "printer.kind: must be one of 'network', 'usb'"),
    (('hostname = ""', 'hostname = "boxi kitchen"'), "box.hostname: 'boxi kitchen' is not a host name"),
    (('ssh_keys = []', 'ssh_keys = ["-----BEGIN OPENSSH PRIVATE KEY-----"]'), "box.ssh_keys: entry 1 is not"),
    (('admin_password = ""', 'admin_password = "short"'), "box.admin_password: too short"),
    (('enabled = false', 'enabled = true'), "mail.host: needed when [mail] enabled = true"),
    (('kind = "ethernet"', 'kind = "wifi"'), "network.wifi_country: Wi-Fi needs the two-letter country code"),
    (('name = ""', 'name = "Boxi'), "not valid TOML"),
    (('intake = "poll"', 'intake = "push"'), "wix.intake: must be one of 'poll', 'webhook', 'both'"),
    (('public_key = ""', 'public_key = "-----BEGIN PUBLIC KEY-----\\nAAAA\\n-----END PUBLIC KEY-----"'),
     "the service refuses the result: wix-printer.toml: key `wix.public_key`: not a PEM public key"),
])
def test_each_mistake_is_named(box: fb.Paths, edit: tuple[str, str], message: str) -> None:
    text = template().replace(*edit, 1)
    assert text != template()
    (box.boot / fb.BOOT_FILE).write_text(text)
    res = fb.apply(box, FakeSystem())
    assert not res.applied
    assert any(message in e for e in res.errors), res.errors
    assert not box.at("etc/wix-printer/config.toml").exists()


def test_wifi_without_password_needs_one_stored(box: fb.Paths) -> None:
    (box.boot / fb.BOOT_FILE).write_text(owner_file(network={"kind": "wifi", "wifi_country": "DE",
                                                             "wifi_ssid": "Küche"}))
    res = fb.apply(box, FakeSystem())
    assert res.errors == ["network.wifi_passphrase: needed for Wi-Fi 'Küche' (the box has no password stored for it)"]


def test_windows_file_bom_crlf_is_read_and_kept(box: fb.Paths) -> None:
    text = owner_file(box={"hostname": "pos-1", "admin_password": "0123456789"}).replace("\n", "\r\n")
    (box.boot / fb.BOOT_FILE).write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert fb.apply(box, FakeSystem()).applied
    after = (box.boot / fb.BOOT_FILE).read_bytes()
    assert b"\r\n" in after and b"0123456789" not in after


def test_blank_secrets_falls_back_to_a_plain_rewrite_for_odd_layouts() -> None:
    text = 'box.admin_password = "topsecret-1"\n[wix]\napi_key = """\nmulti\nline"""\nsite_id = "s"\n'
    settings = {s: {} for s in fb.SCHEMA}
    settings["box"]["admin_password"] = "topsecret-1"
    settings["wix"].update(api_key="\nmulti\nline", site_id="s")
    out = fb.blank_secrets(text, settings)
    assert "topsecret" not in out and "multi" not in out
    back = tomllib.loads(out)
    assert back["wix"] == {"api_key": "", "site_id": "s"} and back["box"]["admin_password"] == ""


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "w.toml"
    f.write_text(template().replace('language = "de"', 'language = "fr"'))
    assert fb.main(["--check", str(f)]) == 1
    assert "restaurant.language: must be one of 'de', 'en', not 'fr'" in capsys.readouterr().err
