"""First boot with the [tunnel] section `fleet enrol` prints: the box's key lands 0600 for
the tunnel account, the relay's host key is pinned, the unit is enabled, and the private
key leaves the boot partition."""

from __future__ import annotations

import os
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest
from wix_appliance import firstboot as fb
from wix_appliance import tunnel
from wix_fleet import enrol

from tests.unit.appliance.test_firstboot import FakeSystem, template
from tests.unit.appliance.test_firstboot import box as box  # the fixture, re-exported

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1RCJVk+3IneC/4fCAnxrooddh5ZtvCoCvYf3bZKAl9"


@pytest.fixture
def section(tmp_path: Path) -> str:
    inv = tmp_path / "inventory"
    inv.mkdir()
    e = enrol.enrol(inv, "boxi-kitchen", keys_dir=tmp_path / "keys", relay_host="relay.example.net",
                    relay_host_key=HOST_KEY)
    return e.boot_section


def with_tunnel_user(box: fb.Paths) -> None:
    passwd = box.at("etc/passwd")
    passwd.write_text(passwd.read_text() + f"{tunnel.USER}:x:{os.getuid()}:{os.getgid()}::/nonexistent:/x\n")
    group = box.at("etc/group")
    group.write_text(group.read_text() + f"{tunnel.USER}:x:{os.getgid()}:\n")


def test_tunnel_section_applied_and_key_leaves_the_boot_partition(box: fb.Paths, section: str) -> None:
    with_tunnel_user(box)
    (box.boot / fb.BOOT_FILE).write_text(template() + "\n" + section)
    sysm = FakeSystem()
    res = fb.apply(box, sysm)
    assert res.applied and not res.errors, res.errors
    want = tomllib.loads(section)["tunnel"]
    key = box.at(tunnel.KEY)
    assert key.read_text().strip() == want["private_key"].strip()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert box.at(f"{tunnel.DIR}/known_hosts").read_text().splitlines()[-1] == f"wix-relay {HOST_KEY}"
    cfg = box.at(f"{tunnel.DIR}/ssh_config").read_text()
    assert "RemoteForward 127.0.0.1:20001 127.0.0.1:8080" in cfg and "RemoteForward 127.0.0.1:22001 127.0.0.1:22" in cfg
    # ssh reads it as the tunnel role's file: pinned key, keep-alives, forwards that must work
    out = subprocess.run(["ssh", "-G", "-F", str(box.at(f"{tunnel.DIR}/ssh_config")), "wix-relay"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert {"hostname relay.example.net", "user wixtunnel", "stricthostkeychecking true", "serveraliveinterval 5",
            "serveralivecountmax 3", "exitonforwardfailure yes", "sessiontype none"} <= set(out)
    assert ("enable", tunnel.UNIT) in sysm.calls
    after = (box.boot / fb.BOOT_FILE).read_text()
    assert "PRIVATE KEY" not in after
    back = tomllib.loads(after)["tunnel"]
    assert back["private_key"] == "" and back["http_port"] == 20001 and back["relay"] == "relay.example.net"
    # the next boot: nothing to do; an edit later with the key blank keeps the box's key
    assert not fb.apply(box, FakeSystem()).applied
    (box.boot / fb.BOOT_FILE).write_text(after.replace("relay_port = 22", "relay_port = 2222"))
    res = fb.apply(box, FakeSystem())
    assert res.applied and not res.errors
    assert key.read_text().strip() == want["private_key"].strip()
    assert "Port 2222" in box.at(f"{tunnel.DIR}/ssh_config").read_text()


def test_a_tunnel_section_without_a_key_on_a_new_box_is_named(box: fb.Paths, section: str) -> None:
    text = template() + "\n" + section.split("# moved onto")[0] + 'private_key = ""\nhttp_port_typo = 1\n'
    (box.boot / fb.BOOT_FILE).write_text(text)
    res = fb.apply(box, FakeSystem())
    assert not res.applied
    assert any("tunnel.http_port_typo" in e and "unknown key" in e for e in res.errors), res.errors
    text = text.replace("http_port_typo = 1\n", "")
    (box.boot / fb.BOOT_FILE).write_text(text)
    res = fb.apply(box, FakeSystem())
    assert any("private_key" in e and "needed the first time" in e for e in res.errors), res.errors
    assert not box.at(f"{tunnel.DIR}/ssh_config").exists()
