"""`fleet enrol`: keys, stable ports, the box list and the inventory generated from it,
read back by the real ansible-inventory and by fleet's own inventory loader."""

from __future__ import annotations

import stat
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from wix_fleet import cli, enrol
from wix_fleet.inventory import InventoryError, load
from wix_fleet.preflight import Knock

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE1RCJVk+3IneC/4fCAnxrooddh5ZtvCoCvYf3bZKAl9 root@relay"


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    d = tmp_path / "inventory"
    d.mkdir()
    (d / "hosts.yml").write_text("---\nprinters:\n  hosts:\n    old-box:\n      ansible_host: 192.0.2.7\n")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "jump")], check=True)
    return d


def run(inv: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert cli.main(["enrol", "-i", str(inv), "--keys-dir", str(inv.parent / "keys"), *args]) == 0
    return capsys.readouterr().out


def test_enrol_two_boxes_then_again(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = run(inv, "box-a", "--relay", "relay.example.net", "--relay-host-key", HOST_KEY,
                "--jump-key", str(inv.parent / "jump"), capsys=capsys)
    run(inv, "box-b", capsys=capsys)
    data = yaml.safe_load((inv / enrol.BOX_LIST).read_text())
    assert data["relay_host"] == "relay.example.net"
    assert data["relay_host_key"] == " ".join(HOST_KEY.split()[:2])
    assert {b: (v["http_port"], v["ssh_port"]) for b, v in data["relay_boxes"].items()} == {
        "box-a": (20001, 22001), "box-b": (20002, 22002)}
    assert len(data["relay_jump_authorized_keys"]) == 1
    key = inv.parent / "keys" / "box-a" / "id_ed25519"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert data["relay_boxes"]["box-a"]["public_key"].split()[1] == (
        Path(f"{key}.pub").read_text().split()[1])
    # the printed section is the boot file's [tunnel], with the private key in it
    t = tomllib.loads(first)["tunnel"]
    assert t["relay"] == "relay.example.net" and (t["http_port"], t["ssh_port"]) == (20001, 22001)
    assert t["private_key"].strip() == key.read_text().strip()
    # again: same ports, same key, nothing new
    assert run(inv, "box-a", capsys=capsys) == first
    # a box that left frees nothing another box has; the next one takes the first free pair
    data["relay_boxes"].pop("box-a")
    (inv / enrol.BOX_LIST).write_text("---\n" + yaml.safe_dump(data))
    run(inv, "box-c", capsys=capsys)
    again = yaml.safe_load((inv / enrol.BOX_LIST).read_text())["relay_boxes"]
    assert (again["box-b"]["http_port"], again["box-c"]["http_port"]) == (20002, 20001)


def test_generated_inventory_reaches_boxes_through_the_relay(inv: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(inv, "box-a", "--relay", "relay.example.net", "--relay-port", "2222", "--relay-host-key", HOST_KEY,
        "--jump-key", str(inv.parent / "jump"), capsys=capsys)
    targets = {t.name: t for t in load(inv, use_cache=False)}
    assert set(targets) == {"old-box", "box-a", "wix-relay"}
    a = targets["box-a"]
    assert a.hostname == "box-a" and a.ssh_config_file == str((inv / enrol.SSH_CONFIG).resolve())
    assert a.ssh_data()["ssh_config_file"] == a.ssh_config_file
    assert targets["old-box"].ssh_config_file is None
    assert "printers" in a.groups and "relay" in targets["wix-relay"].groups
    cfg = (inv / enrol.SSH_CONFIG).read_text()
    assert "Host box-a\n    HostName 127.0.0.1\n    Port 22001\n    ProxyJump wix-relay\n" in cfg
    assert "    Port 2222\n    User wixjump\n" in cfg
    known = (inv / enrol.RELAY_KNOWN_HOSTS).read_text()
    assert known.startswith("relay.example.net,[relay.example.net]:2222 ssh-ed25519 ")
    # ssh itself reads the file: the box is 127.0.0.1:22001 behind the relay
    out = subprocess.run(["ssh", "-G", "-F", str(inv / enrol.SSH_CONFIG), "box-a"], capture_output=True,
                         text=True, check=True).stdout
    assert {"hostname 127.0.0.1", "port 22001", "proxyjump wix-relay", "hostkeyalias box-a"} <= set(out.splitlines())
    # boxes behind the relay are not knocked: their address is the relay's loopback
    knock = Knock([a], timeout=0.5)
    assert knock.poll("box-a") == (True, None)


def test_enrol_refuses_bad_input(inv: Path) -> None:
    keys = inv.parent / "keys"
    with pytest.raises(InventoryError, match="box id"):
        enrol.enrol(inv, "Box_A", keys_dir=keys, relay_host="r", relay_host_key=HOST_KEY)
    with pytest.raises(InventoryError, match="first box needs"):
        enrol.enrol(inv, "box-a", keys_dir=keys)
    with pytest.raises(InventoryError, match="relay-host-key"):
        enrol.enrol(inv, "box-a", keys_dir=keys, relay_host="r", relay_host_key="not a key")
    assert not (inv / enrol.BOX_LIST).exists()
