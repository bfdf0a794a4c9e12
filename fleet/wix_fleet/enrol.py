"""`fleet enrol BOX-ID`: put a box behind the fleet relay with one command.

The box list, group_vars/all/relay.yml of the inventory, is the one source: the relay role
reads it (the boxes' keys and ports), the boxes' tunnel role reads it (their own ports, the
relay's pinned host key), and two generated files tell Ansible and `fleet` how to reach a
box through the relay (relay_hosts.yml, relay_ssh.cfg). Enrolling a box:

1. makes its ed25519 key pair (the private key stays on the controller, 0600, under
   --keys-dir, until it is on the box),
2. gives it the next two free ports on the relay (kept for good: a box never moves),
3. writes the box list and regenerates the two files, and
4. prints the [tunnel] section for the box's boot-partition file wix-printer.toml.

Re-running it for a box that is already enrolled changes nothing and prints the same
section again. `fleet enrol --sync` only regenerates the two files (after a hand edit).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .inventory import InventoryError

BOX_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
HOST_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/]+={0,3}$")
HOST = re.compile(r"^[A-Za-z0-9.:-]+$")
# Port ranges on the relay's loopback: box n gets HTTP_BASE + n and SSH_BASE + n.
HTTP_BASE = 20000
SSH_BASE = 22000
MAX_BOXES = 1999

BOX_LIST = Path("group_vars") / "all" / "relay.yml"
HOSTS_FILE = "relay_hosts.yml"
# .cfg and .txt: Ansible skips these names when it reads the inventory folder (its
# default inventory_ignore_extensions), so it never tries them as inventory sources.
SSH_CONFIG = "relay_ssh.cfg"
RELAY_KNOWN_HOSTS = "relay_known_hosts.txt"
BOX_KNOWN_HOSTS = "relay_box_known_hosts.txt"
# The relay's Host alias in relay_ssh.cfg (ProxyJump target) and its inventory name.
RELAY_ALIAS = "wix-relay"

_HEADER = """\
---
# The boxes behind the fleet relay: the one list the relay role (their keys and ports),
# the boxes' tunnel role (their own ports, the relay's pinned host key) and the generated
# relay_hosts.yml / relay_ssh.cfg read. Written by `fleet enrol BOX-ID`; after a hand
# edit run `fleet enrol --sync`. A box keeps its ports for good.
"""


def _yaml() -> Any:
    try:
        import yaml  # type: ignore[import-untyped]  # comes with ansible-core (the ops extra)
    except ModuleNotFoundError as e:
        raise InventoryError("PyYAML is missing; install the ops extra: pip install -e '.[ops]'") from e
    return yaml


@dataclass
class Box:
    http_port: int
    ssh_port: int
    public_key: str


@dataclass
class Relay:
    """The box list as group_vars/all/relay.yml holds it."""

    host: str = ""
    ssh_port: int = 22
    host_key: str = ""
    jump_user: str = "wixjump"
    jump_key: str = ""
    jump_authorized_keys: list[str] = field(default_factory=list)
    boxes: dict[str, Box] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Relay:
        if not path.exists():
            return cls()
        data = _yaml().safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise InventoryError(f"{path}: not a mapping")
        boxes: dict[str, Box] = {}
        for name, b in (data.get("relay_boxes") or {}).items():
            try:
                boxes[str(name)] = Box(int(b["http_port"]), int(b["ssh_port"]), str(b["public_key"]))
            except (KeyError, TypeError, ValueError) as e:
                raise InventoryError(f"{path}: relay_boxes[{name}] needs http_port, ssh_port, public_key") from e
        return cls(host=str(data.get("relay_host", "")), ssh_port=int(data.get("relay_ssh_port", 22)),
                   host_key=str(data.get("relay_host_key", "")),
                   jump_user=str(data.get("relay_jump_user", "wixjump")),
                   jump_key=str(data.get("relay_jump_key", "")),
                   jump_authorized_keys=[str(k) for k in data.get("relay_jump_authorized_keys") or []],
                   boxes=boxes)

    def dump(self) -> str:
        data = {
            "relay_host": self.host,
            "relay_ssh_port": self.ssh_port,
            "relay_host_key": self.host_key,
            "relay_jump_user": self.jump_user,
            "relay_jump_key": self.jump_key,
            "relay_jump_authorized_keys": self.jump_authorized_keys,
            "relay_boxes": {n: {"http_port": b.http_port, "ssh_port": b.ssh_port, "public_key": b.public_key}
                            for n, b in sorted(self.boxes.items())},
        }
        yaml = _yaml()

        class Dumper(yaml.SafeDumper):  # type: ignore[misc,name-defined]
            # Indented list items, as the inventory's yamllint config wants them.
            def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
                return super().increase_indent(flow, False)

        body: str = yaml.dump(data, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1000)
        return _HEADER + body

    def allocate(self) -> tuple[int, int]:
        """The lowest box number whose two ports are both free (ports are never reused
        while a box has them, and never change for a box)."""
        used = {b.http_port for b in self.boxes.values()} | {b.ssh_port for b in self.boxes.values()}
        for n in range(1, MAX_BOXES + 1):
            if HTTP_BASE + n not in used and SSH_BASE + n not in used:
                return HTTP_BASE + n, SSH_BASE + n
        raise InventoryError(f"no free ports left for another box (at most {MAX_BOXES})")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)  # atomic: a playbook started meanwhile reads the old or the new file


def make_key(keys_dir: Path, box: str) -> Path:
    """The box's key pair under keys_dir/<box>/ (0700 folder, 0600 key), made once."""
    d = keys_dir / box
    key = d / "id_ed25519"
    if key.exists():
        return key
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    argv = ["/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"wix-tunnel-{box}", "-f", str(key)]
    subprocess.run(argv, check=True, capture_output=True, text=True)  # noqa: S603 - fixed tool, checked box id
    os.chmod(key, 0o600)
    return key


def _known_hosts_names(relay: Relay) -> str:
    # OpenSSH looks the relay up as HostName (as [host]:port off port 22); pyinfra's
    # ProxyJump hop always asks paramiko for [host]:port (the port comes from the ssh
    # config as text, so even 22 counts as "not 22"). Both names, one key.
    return f"{relay.host},[{relay.host}]:{relay.ssh_port}"


def hosts_yaml(relay: Relay) -> str:
    lines = [
        "---",
        "# Generated by `fleet enrol` from group_vars/all/relay.yml: how Ansible and `fleet`",
        "# reach each box through the relay. Do not edit: change relay.yml, run `fleet enrol --sync`.",
        "relay:",
        "  hosts:",
        f"    {RELAY_ALIAS}:",
        f"      ansible_host: {relay.host}",
        f"      ansible_port: {relay.ssh_port}",
        "printers:",
    ]
    if relay.boxes:
        lines.append("  hosts:")
        for name in sorted(relay.boxes):
            lines += [
                f"    {name}:",
                # The Host block of that name in relay_ssh.cfg: 127.0.0.1:<ssh port> on
                # the relay, through the jump account.
                f"      ansible_host: {name}",
                f"      ansible_ssh_common_args: -F {{{{ inventory_dir }}}}/{SSH_CONFIG}",
            ]
    else:
        lines.append("  hosts: {}")
    return "\n".join(lines) + "\n"


def ssh_config(relay: Relay, inventory_dir: Path) -> str:
    inv = inventory_dir.resolve()
    jump_key = os.path.expanduser(relay.jump_key) if relay.jump_key else ""
    out = [
        "# Generated by `fleet enrol` from group_vars/all/relay.yml (paths are absolute: run",
        "# `fleet enrol --sync` after moving the inventory). `ssh -F <this file> BOX-ID` reaches",
        "# a box through the relay; Ansible and `fleet` use it the same way.",
        f"Host {RELAY_ALIAS}",
        f"    HostName {relay.host}",
        f"    Port {relay.ssh_port}",
        f"    User {relay.jump_user}",
    ]
    if jump_key:
        out += [f"    IdentityFile {jump_key}", "    IdentitiesOnly yes"]
    out += [
        f"    UserKnownHostsFile {inv / RELAY_KNOWN_HOSTS}",
        "    StrictHostKeyChecking yes",
        "    ConnectTimeout 10",
        "    ServerAliveInterval 15",
        "",
    ]
    for name, b in sorted(relay.boxes.items()):
        out += [
            f"Host {name}",
            "    HostName 127.0.0.1",
            f"    Port {b.ssh_port}",
            f"    ProxyJump {RELAY_ALIAS}",
            f"    UserKnownHostsFile {inv / BOX_KNOWN_HOSTS}",
            # Every box is 127.0.0.1 seen from the relay; its own name keeps the keys apart.
            f"    HostKeyAlias {name}",
            "    StrictHostKeyChecking accept-new",
            "",
        ]
    return "\n".join(out)


def sync(inventory_dir: Path, relay: Relay | None = None) -> Relay:
    """Regenerate relay_hosts.yml, relay_ssh.cfg and the relay's known_hosts."""
    relay = relay or Relay.load(inventory_dir / BOX_LIST)
    if not relay.host:
        raise InventoryError(f"{inventory_dir / BOX_LIST}: no relay_host yet (enrol a box with --relay HOST)")
    _write(inventory_dir / HOSTS_FILE, hosts_yaml(relay))
    _write(inventory_dir / SSH_CONFIG, ssh_config(relay, inventory_dir))
    _write(inventory_dir / RELAY_KNOWN_HOSTS, f"{_known_hosts_names(relay)} {relay.host_key}\n")
    box_known = inventory_dir / BOX_KNOWN_HOSTS
    if not box_known.exists():
        _write(box_known, "")
    return relay


def boot_section(relay: Relay, box: str, private_key: str) -> str:
    b = relay.boxes[box]
    return (
        "[tunnel]\n"
        f'relay = "{relay.host}"\n'
        f"relay_port = {relay.ssh_port}\n"
        f'relay_host_key = "{relay.host_key}"\n'
        f"http_port = {b.http_port}\n"
        f"ssh_port = {b.ssh_port}\n"
        "# moved onto the box (0600) at first boot and blanked here\n"
        f'private_key = """\n{private_key.strip()}\n"""\n'
    )


@dataclass
class Enrolled:
    box: str
    http_port: int
    ssh_port: int
    key_file: Path
    new: bool
    boot_section: str
    webhook_url: str


def inventory_dir_of(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def enrol(inventory_dir: Path, box: str, *, keys_dir: Path, relay_host: str | None = None,
          relay_port: int | None = None, relay_host_key: str | None = None,
          jump_key: str | None = None) -> Enrolled:
    if not BOX_ID.match(box):
        raise InventoryError(f"box id {box!r}: lower-case letters, digits and '-' (a host name)")
    path = inventory_dir / BOX_LIST
    relay = Relay.load(path)
    if relay_host is not None:
        if not HOST.match(relay_host):
            raise InventoryError(f"--relay {relay_host!r}: a host name or address")
        relay.host = relay_host
    if relay_port is not None:
        relay.ssh_port = relay_port
    if relay_host_key is not None:
        key = " ".join(relay_host_key.split()[:2])
        if not HOST_KEY.match(key):
            raise InventoryError("--relay-host-key: the relay's public host key, 'ssh-ed25519 AAAA...' "
                                 "(on the relay: cat /etc/ssh/ssh_host_ed25519_key.pub)")
        relay.host_key = key
    if jump_key is not None:
        # ssh reads a relative IdentityFile from wherever it runs; ~ stays ~ (portable).
        relay.jump_key = jump_key if jump_key.startswith("~") else str(Path(jump_key).absolute())
    if not relay.host or not relay.host_key:
        raise InventoryError("the first box needs --relay HOST and --relay-host-key 'ssh-ed25519 AAAA...'")
    if relay.jump_key:
        pub = Path(os.path.expanduser(relay.jump_key) + ".pub")
        if not pub.exists():
            raise InventoryError(f"--jump-key: {pub} not found (the controller's key for the relay's jump account)")
        line = " ".join(pub.read_text().split()[:2])
        if line not in (" ".join(k.split()[:2]) for k in relay.jump_authorized_keys):
            relay.jump_authorized_keys.append(line)

    key_file = make_key(keys_dir, box)
    public = " ".join(Path(str(key_file) + ".pub").read_text().split()[:2]) + f" {box}"
    new = box not in relay.boxes
    if new:
        http_port, ssh_port = relay.allocate()
        relay.boxes[box] = Box(http_port, ssh_port, public)
    else:
        relay.boxes[box].public_key = public
    _write(path, relay.dump())
    sync(inventory_dir, relay)
    b = relay.boxes[box]
    return Enrolled(box=box, http_port=b.http_port, ssh_port=b.ssh_port, key_file=key_file, new=new,
                    boot_section=boot_section(relay, box, key_file.read_text()),
                    webhook_url=f"https://{relay.host}/{box}/webhooks/wix")


def report(e: Enrolled, inventory_dir: Path, out: Any = None) -> None:
    """The boot-file lines on stdout (they pipe into the file); the next steps on stderr."""
    out = out or sys.stdout
    out.write(e.boot_section)
    say = sys.stderr.write
    say(f"\n{'enrolled' if e.new else 'already enrolled'}: {e.box}  http port {e.http_port}, "
        f"ssh port {e.ssh_port} on the relay; key {e.key_file}\n")
    say(f"Wix webhook URL: {e.webhook_url}\n")
    say("Next: add the lines above to the box's wix-printer.toml (boot partition), then publish the box list:\n")
    say(f"  ansible-playbook -i {inventory_dir} playbooks/relay.yml\n")
