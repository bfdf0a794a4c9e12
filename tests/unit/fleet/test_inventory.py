"""Ansible's inventory view -> SSH targets: groups, templated key paths, ssh options, --limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from wix_fleet import inventory as inv
from wix_fleet.inventory import Target, host_groups, select, ssh_options, target_from_hostvars, targets

ROOT = Path(__file__).resolve().parents[3]

EXAMPLE = {
    "_meta": {"hostvars": {
        "boxi-kitchen": {"ansible_host": "relay.example", "ansible_port": 22001, "ansible_user": "root"},
        "boxi-bar": {"ansible_host": "relay.example", "ansible_port": 22002, "ansible_user": "root",
                     "printer_service_root": "/srv/wix"},
        "zgrill-1": {"ansible_host": "relay.example", "ansible_port": "22101", "ansible_user": "ops",
                     "ansible_become": True},
    }},
    "all": {"children": ["ungrouped", "printers", "region_berlin"]},
    "printers": {"children": ["customer_boxi", "customer_zurich_grill"]},
    "customer_boxi": {"hosts": ["boxi-kitchen", "boxi-bar"]},
    "customer_zurich_grill": {"hosts": ["zgrill-1"]},
    "region_berlin": {"hosts": ["boxi-kitchen", "boxi-bar"]},
}


def test_groups_follow_children() -> None:
    g = host_groups(EXAMPLE)
    assert g["boxi-bar"] == {"all", "printers", "customer_boxi", "region_berlin"}
    assert g["zgrill-1"] == {"all", "printers", "customer_zurich_grill"}


def test_targets_carry_connection_data_and_role_paths(tmp_path: Path) -> None:
    ts = {t.name: t for t in targets(EXAMPLE, tmp_path)}
    assert ts["boxi-kitchen"].ssh_data()["ssh_port"] == 22001
    assert ts["boxi-kitchen"].hostname == "relay.example" and not ts["boxi-kitchen"].become
    assert ts["zgrill-1"].port == 22101 and ts["zgrill-1"].become  # a non-root user goes through sudo
    assert ts["boxi-bar"].root == "/srv/wix" and ts["boxi-kitchen"].root == "/opt/wix-printer"
    assert ts["boxi-bar"].config == "/etc/wix-printer/config.toml"
    # no key in the inventory: the operator's agent and ~/.ssh keys are allowed
    assert ts["boxi-bar"].ssh_data()["ssh_allow_agent"] is True


def test_inventory_dir_in_the_key_path_is_rendered(tmp_path: Path) -> None:
    hv = {"ansible_host": "10.0.0.1",
          "ansible_ssh_private_key_file": "{{ inventory_dir }}/../../var/ansible/ssh/id_ed25519",
          "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"}
    d = tmp_path / "inventory" / "test"
    d.mkdir(parents=True)
    t = target_from_hostvars("box", hv, d)
    assert t.key_file == str(tmp_path / "var" / "ansible" / "ssh" / "id_ed25519")
    assert t.strict_host_key_checking == "no" and t.known_hosts_file == "/dev/null"
    data = t.ssh_data()
    assert data["ssh_key"] == t.key_file and data["ssh_allow_agent"] is False
    # a file as the inventory: its folder is inventory_dir
    f = d / "hosts.yml"
    f.write_text("")
    assert target_from_hostvars("box", hv, f).key_file == t.key_file


def test_an_unresolvable_variable_marks_only_that_box(tmp_path: Path) -> None:
    t = target_from_hostvars("box", {"ansible_host": "{{ vault_relay_host }}"}, tmp_path, ["printers"])
    assert t.error and "vault_relay_host" in t.error and t.groups == ("printers",)


def test_ssh_options() -> None:
    assert ssh_options("-o StrictHostKeyChecking=accept-new -oUserKnownHostsFile=/tmp/kh -C") == {
        "stricthostkeychecking": "accept-new", "userknownhostsfile": "/tmp/kh"}
    assert ssh_options("") == {}


@pytest.mark.parametrize(("limit", "expected"), [
    (None, ["boxi-bar", "boxi-kitchen", "zgrill-1"]),
    ("customer_boxi", ["boxi-bar", "boxi-kitchen"]),
    ("zgrill-1,boxi-bar", ["boxi-bar", "zgrill-1"]),
    ("boxi-*", ["boxi-bar", "boxi-kitchen"]),
    ("printers:!boxi-bar", ["boxi-kitchen", "zgrill-1"]),
    ("printers:&region_berlin", ["boxi-bar", "boxi-kitchen"]),
    ("nothing", []),
])
def test_limit(limit: str | None, expected: list[str], tmp_path: Path) -> None:
    assert [t.name for t in select(targets(EXAMPLE, tmp_path), limit)] == expected


def test_default_inventory_is_ansibles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANSIBLE_INVENTORY", raising=False)
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    (tmp_path / "ansible.cfg").write_text("[defaults]\ninventory = inv/hosts.yml\n")
    assert inv.default_inventory(tmp_path) == (tmp_path / "inv" / "hosts.yml").resolve()
    monkeypatch.setenv("ANSIBLE_INVENTORY", "/x/y.yml,/z")
    assert inv.default_inventory(tmp_path) == Path("/x/y.yml")
    monkeypatch.delenv("ANSIBLE_INVENTORY")
    with pytest.raises(inv.InventoryError):
        inv.default_inventory(tmp_path / "empty")


def test_the_repos_inventories_through_ansible_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ansible-inventory over the committed example and test fleets, and its cache."""
    try:
        inv.ansible_inventory_bin()
    except inv.InventoryError:
        pytest.skip("ansible-inventory not installed (the ops extra)")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)
    example = {t.name: t for t in inv.load(ROOT / "inventory" / "example", "printers")}
    assert set(example) == {"boxi-kitchen", "boxi-bar", "zgrill-1"}
    # Reached through the relay: the Host block of relay_ssh.cfg (fleet enrol --sync) says how.
    bar = example["boxi-bar"]
    assert bar.hostname == "boxi-bar" and "customer_boxi" in bar.groups
    assert bar.ssh_config_file == str(ROOT / "inventory" / "example" / "relay_ssh.cfg")
    assert [t.name for t in inv.load(ROOT / "inventory" / "example", "relay")] == ["wix-relay"]
    test = inv.load(ROOT / "inventory" / "test", "printers")
    assert [t.name for t in test] == ["wix-test-1", "wix-test-2", "wix-test-3"]
    assert test[0].key_file == str(ROOT / "var" / "ansible" / "ssh" / "id_ed25519")
    assert len(list((tmp_path / "cache" / "wix-fleet").glob("inventory-*.json"))) == 1


def test_cache_key_follows_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inv, "ansible_inventory_bin", lambda: "/usr/bin/ansible-inventory")
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "inv"
    (d / "group_vars").mkdir(parents=True)
    (d / "hosts.yml").write_text("printers:\n  hosts:\n    a:\n")
    k1 = inv.cache_key(d)
    assert k1 == inv.cache_key(d)
    (d / "hosts.yml").write_text("printers:\n  hosts:\n    a:\n    b:\n")  # a box added
    assert inv.cache_key(d) != k1
    (d / "aws_ec2.yml").write_text("plugin: amazon.aws.aws_ec2\n")  # dynamic: never cached
    assert inv.cache_key(d) is None


def test_ansible_list_uses_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    class Done:
        returncode = 0
        stdout = json.dumps(EXAMPLE)
        stderr = ""

    def fake_run(argv: list[str], **kw: object) -> Done:
        calls.append(argv)
        return Done()

    monkeypatch.setattr(inv, "ansible_inventory_bin", lambda: "/usr/bin/ansible-inventory")
    monkeypatch.setattr(inv.subprocess, "run", fake_run)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hosts.yml").write_text("x")
    assert inv.ansible_list(tmp_path / "hosts.yml") == EXAMPLE
    assert inv.ansible_list(tmp_path / "hosts.yml") == EXAMPLE
    assert len(calls) == 1
    inv.ansible_list(tmp_path / "hosts.yml", use_cache=False)
    assert len(calls) == 2


def test_target_defaults() -> None:
    t = Target("b", "10.0.0.1")
    assert t.strict_host_key_checking == "accept-new" and t.unit == "wix-printer.service"
    assert t.service_user == "wixprint"
