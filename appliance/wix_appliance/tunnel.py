"""The [tunnel] section of the boot file: the box's outbound tunnel to the fleet relay.

`fleet enrol BOX-ID` on the integrator's controller prints the section; first boot
(firstboot.py) checks it with the rest of the file, writes the same files the `tunnel`
role writes (the key 0600 for the tunnel account, the relay's pinned host key, the ssh
config), starts wix-tunnel.service, and then blanks `private_key` on the FAT partition
like every other secret ("" = keep the key the box has).

    [tunnel]
    relay = "relay.example.net"
    relay_port = 22
    relay_host_key = "ssh-ed25519 AAAA..."
    http_port = 20001
    ssh_port = 22001
    private_key = \"\"\"
    -----BEGIN OPENSSH PRIVATE KEY-----
    ...
    -----END OPENSSH PRIVATE KEY-----
    \"\"\"
"""

from __future__ import annotations

import re
from typing import Any

# key -> (type, secret, hint); firstboot turns these into its schema's Key entries.
KEYS: dict[str, tuple[type, bool, str]] = {
    "relay": (str, False, 'the relay\'s host name, e.g. "relay.example.net"'),
    "relay_port": (int, False, "the relay's SSH port, usually 22"),
    "relay_host_key": (str, False, 'the relay\'s SSH host key, "ssh-ed25519 AAAA..."'),
    "http_port": (int, False, "this box's webhook port on the relay (fleet enrol prints it)"),
    "ssh_port": (int, False, "this box's SSH port on the relay (fleet enrol prints it)"),
    "private_key": (str, True, "the block fleet enrol printed, between triple quotes"),
}

UNIT = "wix-tunnel.service"
# The tunnel role's defaults (roles/tunnel/defaults/main.yml): same account, same folder.
USER = "wixtunnel"
RELAY_USER = "wixtunnel"
DIR = "etc/wix-tunnel"
KEY = f"{DIR}/id_ed25519"
SERVICE_PORT = 8080
SERVER_ALIVE_INTERVAL = 5
SERVER_ALIVE_COUNT_MAX = 3

HOST = re.compile(r"^[A-Za-z0-9.:-]+$")
HOST_KEY = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp256|ssh-rsa) [A-Za-z0-9+/]+={0,3}( \S*)?$")
PRIVATE_KEY = re.compile(r"^-----BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END OPENSSH PRIVATE KEY-----$")


def check(t: dict[str, Any], has_key: bool) -> list[tuple[str, str]]:
    """Problems of the [tunnel] section as (key, message); an absent section has none."""
    if not t:
        return []
    p: list[tuple[str, str]] = []
    for k in ("relay", "relay_host_key", "http_port", "ssh_port"):
        if not t.get(k):
            p.append((k, "needed for the tunnel (copy the whole [tunnel] section fleet enrol printed)"))
    if t.get("relay") and not HOST.match(t["relay"]):
        p.append(("relay", f"{t['relay']!r} is not a host name or address"))
    if t.get("relay_host_key") and not HOST_KEY.match(t["relay_host_key"].strip()):
        p.append(("relay_host_key", 'the relay\'s public host key, "ssh-ed25519 AAAA..."'))
    for k in ("relay_port", "http_port", "ssh_port"):
        if k in t and not 1 <= t[k] <= 65535:
            p.append((k, "must be a whole number from 1 to 65535"))
    key = normalise_key(t.get("private_key", ""))
    if key and not PRIVATE_KEY.match(key):
        p.append(("private_key", "the whole block from -----BEGIN OPENSSH PRIVATE KEY----- to "
                                 "-----END OPENSSH PRIVATE KEY----- between triple quotes"))
    elif not key and not has_key:
        p.append(("private_key", "needed the first time (the box has no tunnel key yet)"))
    return p


def normalise_key(text: str) -> str:
    """The key block without the indentation or Windows line ends an editor may add."""
    return "\n".join(line.strip() for line in text.strip().splitlines() if line.strip())


def known_hosts(t: dict[str, Any]) -> str:
    key = " ".join(t["relay_host_key"].split()[:2])
    return f"# From wix-printer.toml ([tunnel] relay_host_key), pinned.\nwix-relay {key}\n"


def ssh_config(t: dict[str, Any]) -> str:
    d = f"/{DIR}"
    return "\n".join([
        "# From wix-printer.toml ([tunnel]); the same file the tunnel role writes.",
        "Host wix-relay",
        f"    HostName {t['relay']}",
        f"    Port {int(t.get('relay_port', 22))}",
        f"    User {RELAY_USER}",
        f"    IdentityFile {d}/id_ed25519",
        "    IdentitiesOnly yes",
        "    HostKeyAlias wix-relay",
        f"    UserKnownHostsFile {d}/known_hosts",
        "    GlobalKnownHostsFile /dev/null",
        "    StrictHostKeyChecking yes",
        "    UpdateHostKeys no",
        "    BatchMode yes",
        "    ConnectTimeout 10",
        f"    ServerAliveInterval {SERVER_ALIVE_INTERVAL}",
        f"    ServerAliveCountMax {SERVER_ALIVE_COUNT_MAX}",
        "    ExitOnForwardFailure yes",
        "    SessionType none",
        "    RequestTTY no",
        "    ForwardAgent no",
        "    ForwardX11 no",
        "    ClearAllForwardings no",
        f"    RemoteForward 127.0.0.1:{int(t['http_port'])} 127.0.0.1:{SERVICE_PORT}",
        f"    RemoteForward 127.0.0.1:{int(t['ssh_port'])} 127.0.0.1:22",
        "",
    ])


def files(t: dict[str, Any]) -> list[tuple[str, str, int, bool]]:
    """(path under the root, content, mode, owned by the tunnel account) to write; the
    key only when the section carries one."""
    out = [(f"{DIR}/known_hosts", known_hosts(t), 0o644, False), (f"{DIR}/ssh_config", ssh_config(t), 0o644, False)]
    key = normalise_key(t.get("private_key", ""))
    if key:
        out.append((KEY, key + "\n", 0o600, True))
    return out
