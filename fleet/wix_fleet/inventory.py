"""The boxes, read from the Ansible inventory through `ansible-inventory --list`.

Ansible owns the inventory (groups, group_vars, vault); this module only asks Ansible for
its resolved view, so a box added for a deploy is a box `fleet` sees, with no second list.
"""

from __future__ import annotations

import configparser
import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

# Role defaults (roles/printer_service/defaults/main.yml); an inventory may override them
# per box, and the fleet commands must look where the role put things.
DEFAULT_PATHS = {
    "printer_service_root": "/opt/wix-printer",
    "printer_service_config_dir": "/etc/wix-printer",
    "printer_service_user": "wixprint",
    "printer_service_unit": "wix-printer.service",
}


class InventoryError(Exception):
    """The inventory could not be read; the message is meant for the operator."""


@dataclass(frozen=True)
class Target:
    """One box and how to reach it over SSH (pyinfra's ssh_* host data)."""

    name: str
    hostname: str
    port: int = 22
    user: str = "root"
    key_file: str | None = None
    # "accept-new" unless the inventory says otherwise: a fleet sweep never stops to ask.
    strict_host_key_checking: str = "accept-new"
    known_hosts_file: str | None = None
    # `-F FILE` from ansible_ssh_common_args: a box behind the fleet relay is a Host block
    # there (HostName, Port, ProxyJump through the relay), read by pyinfra as by ssh.
    ssh_config_file: str | None = None
    become: bool = False
    groups: tuple[str, ...] = ()
    paths: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PATHS))
    # Set when this box's connection variables could not be resolved; it is still listed.
    error: str | None = None

    def ssh_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ssh_hostname": self.hostname, "ssh_port": self.port, "ssh_user": self.user,
                                "ssh_strict_host_key_checking": self.strict_host_key_checking,
                                # Only the inventory's key: an agent or ~/.ssh keys would make a
                                # sweep depend on who runs it.
                                "ssh_allow_agent": self.key_file is None, "ssh_look_for_keys": self.key_file is None}
        if self.key_file:
            data["ssh_key"] = self.key_file
        if self.known_hosts_file:
            data["ssh_known_hosts_file"] = self.known_hosts_file
        if self.ssh_config_file:
            data["ssh_config_file"] = self.ssh_config_file
        return data

    @property
    def root(self) -> str:
        return self.paths["printer_service_root"]

    @property
    def config(self) -> str:
        return f"{self.paths['printer_service_config_dir']}/config.toml"

    @property
    def service_user(self) -> str:
        return self.paths["printer_service_user"]

    @property
    def unit(self) -> str:
        return self.paths["printer_service_unit"]


# --- finding the inventory ---------------------------------------------------------------
def default_inventory(cwd: Path | None = None) -> Path:
    """Where Ansible itself would look: $ANSIBLE_INVENTORY, else ansible.cfg's inventory."""
    cwd = cwd or Path.cwd()
    env = os.environ.get("ANSIBLE_INVENTORY")
    if env:
        return Path(env.split(",")[0]).expanduser()
    cfg_path = Path(os.environ.get("ANSIBLE_CONFIG") or cwd / "ansible.cfg")
    if cfg_path.is_file():
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(cfg_path)
        inv = cfg.get("defaults", "inventory", fallback=None)
        if inv:
            return (cfg_path.parent / inv.split(",")[0].strip()).resolve()
    raise InventoryError("no inventory: pass -i PATH, set ANSIBLE_INVENTORY or run next to an ansible.cfg")


def ansible_inventory_bin() -> str:
    # The one in this venv first: the `ops` extra pins the ansible-core the roles are tested with.
    here = Path(sys.executable).parent / "ansible-inventory"
    if here.exists():
        return str(here)
    found = shutil.which("ansible-inventory")
    if not found:
        raise InventoryError("ansible-inventory not found (pip install -e .[ops])")
    return found


# --- running ansible-inventory, cached ---------------------------------------------------
def _inventory_files(inventory: Path) -> list[Path]:
    if inventory.is_file():
        return [inventory]
    return sorted(p for p in inventory.rglob("*") if p.is_file())


def _is_dynamic(files: Iterable[Path]) -> bool:
    """Plugin or script inventories answer differently without any file changing."""
    for f in files:
        if os.access(f, os.X_OK) and f.suffix not in (".yml", ".yaml", ".ini", ".json", ""):
            return True
        if f.suffix in (".yml", ".yaml") and re.search(r"(?m)^plugin:", f.read_text(errors="replace")):
            return True
    return False


def cache_key(inventory: Path) -> str | None:
    """A hash of everything ansible-inventory reads for a static inventory, or None when
    the answer cannot be cached. Ansible needs ~1.5 s to start, a third of the status budget."""
    files = _inventory_files(inventory)
    if _is_dynamic(files):
        return None
    h = hashlib.sha256(str(inventory.resolve()).encode() + b"\0" + ansible_inventory_bin().encode())
    cfg = Path(os.environ.get("ANSIBLE_CONFIG") or "ansible.cfg")
    for f in [*files, cfg]:
        if f.is_file():
            h.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wix-fleet"


def ansible_list(inventory: Path, *, use_cache: bool = True, timeout: float = 60) -> dict[str, Any]:
    """`ansible-inventory -i INVENTORY --list` as JSON."""
    if not inventory.exists():
        raise InventoryError(f"inventory not found: {inventory}")
    key = cache_key(inventory) if use_cache else None
    cached = cache_dir() / f"inventory-{key}.json" if key else None
    if cached is not None and cached.exists():
        try:
            data: dict[str, Any] = json.loads(cached.read_text())
            return data
        except ValueError:
            pass
    argv = [ansible_inventory_bin(), "-i", str(inventory), "--list"]
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    except subprocess.TimeoutExpired as e:
        raise InventoryError(f"ansible-inventory did not answer within {timeout:.0f} s") from e
    if res.returncode != 0:
        raise InventoryError(f"ansible-inventory failed: {res.stderr.strip()[-2000:]}")
    data = json.loads(res.stdout)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(res.stdout)
        tmp.replace(cached)  # atomic: a parallel run never reads half a file
        for old in cached.parent.glob("inventory-*.json"):
            if old != cached:
                old.unlink(missing_ok=True)
    return data


# --- from Ansible's view to targets -------------------------------------------------------
def host_groups(data: Mapping[str, Any]) -> dict[str, set[str]]:
    """Every group a host is in, through nested `children`."""
    direct: dict[str, set[str]] = {}
    children: dict[str, list[str]] = {}
    for group, body in data.items():
        if group == "_meta" or not isinstance(body, dict):
            continue
        for h in body.get("hosts", []):
            direct.setdefault(h, set()).add(group)
        children[group] = list(body.get("children", []))
    parents: dict[str, set[str]] = {}
    for group, kids in children.items():
        for kid in kids:
            parents.setdefault(kid, set()).add(group)

    def ancestors(group: str, seen: set[str]) -> set[str]:
        for p in parents.get(group, set()):
            if p not in seen:
                seen.add(p)
                ancestors(p, seen)
        return seen

    out: dict[str, set[str]] = {}
    for h, groups in direct.items():
        every = set(groups)
        for g in groups:
            every |= ancestors(g, set())
        every.add("all")
        out[h] = every
    for h in data.get("_meta", {}).get("hostvars", {}):
        out.setdefault(h, {"all", "ungrouped"})
    return out


def _render(value: Any, context: Mapping[str, Any]) -> Any:
    # ansible-inventory --list does not template; the connection variables of the test
    # inventory use {{ inventory_dir }}. Only those few variables are rendered, strictly:
    # a vault reference we cannot resolve is an error for that box, not a guess.
    if not isinstance(value, str) or "{{" not in value:
        return value
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - not HTML
    return env.from_string(value).render(**context)


def ssh_options(common_args: str) -> dict[str, str]:
    """`-o Key=Value` pairs from ansible_ssh_common_args / ansible_ssh_extra_args."""
    opts: dict[str, str] = {}
    words = shlex.split(common_args)
    for i, w in enumerate(words):
        kv = None
        if w == "-o" and i + 1 < len(words):
            kv = words[i + 1]
        elif w.startswith("-o") and len(w) > 2:
            kv = w[2:]
        if kv and "=" in kv:
            k, v = kv.split("=", 1)
            opts[k.strip().lower()] = v.strip()
    return opts


def ssh_config_file(common_args: str) -> str | None:
    """The `-F FILE` of ansible_ssh_common_args / ansible_ssh_extra_args, if any."""
    words = shlex.split(common_args)
    for i, w in enumerate(words):
        if w == "-F" and i + 1 < len(words):
            return words[i + 1]
        if w.startswith("-F") and len(w) > 2:
            return w[2:]
    return None


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.strip().lower() in ("1", "yes", "true", "on"))


def target_from_hostvars(name: str, hv: Mapping[str, Any], inventory: Path, groups: Iterable[str] = ()) -> Target:
    inv_dir = inventory if inventory.is_dir() else inventory.parent
    context = {**hv, "inventory_hostname": name, "inventory_dir": str(inv_dir.resolve()),
               "inventory_file": str(inventory.resolve()), "playbook_dir": str(Path.cwd())}
    grp = tuple(sorted(groups))
    try:
        hostname = str(_render(hv.get("ansible_host", name), context))
        port = int(_render(hv.get("ansible_port", hv.get("ansible_ssh_port", 22)), context))
        user = str(_render(hv.get("ansible_user", hv.get("ansible_ssh_user", "root")), context))
        key = hv.get("ansible_ssh_private_key_file", hv.get("ansible_private_key_file"))
        key_file = os.path.normpath(os.path.expanduser(str(_render(key, context)))) if key else None
        args = " ".join(str(_render(hv.get(k, ""), context)) for k in ("ansible_ssh_common_args",
                                                                        "ansible_ssh_extra_args"))
        opts = ssh_options(args)
        paths = dict(DEFAULT_PATHS)
        for k in paths:
            if isinstance(hv.get(k), str):
                paths[k] = str(_render(hv[k], context))
    except (jinja2.TemplateError, ValueError, TypeError) as e:
        return Target(name=name, hostname=str(hv.get("ansible_host", name)), groups=grp,
                      error=f"inventory: {e}")
    strict = opts.get("stricthostkeychecking", "accept-new").lower()
    if strict not in ("yes", "no", "off", "accept-new"):
        strict = "accept-new"
    known = opts.get("userknownhostsfile")
    config = ssh_config_file(args)
    return Target(name=name, hostname=hostname, port=port, user=user, key_file=key_file,
                  strict_host_key_checking=strict, known_hosts_file=known,
                  ssh_config_file=os.path.expanduser(config) if config else None,
                  become=_truthy(hv.get("ansible_become", False)) or user != "root", groups=grp, paths=paths)


def targets(data: Mapping[str, Any], inventory: Path) -> list[Target]:
    hostvars: Mapping[str, Any] = data.get("_meta", {}).get("hostvars", {})
    groups = host_groups(data)
    names = sorted(set(hostvars) | set(groups))
    return [target_from_hostvars(n, hostvars.get(n, {}), inventory, groups.get(n, ())) for n in names]


def select(all_targets: list[Target], limit: str | None) -> list[Target]:
    """Ansible-style --limit: comma- or colon-separated host or group names or globs,
    `!x` excludes, `&x` intersects."""
    if not limit:
        return list(all_targets)
    include: list[str] = []
    exclude: list[str] = []
    intersect: list[str] = []
    for pat in (p.strip() for p in re.split(r"[,:]", limit)):
        if not pat:
            continue
        if pat.startswith("!"):
            exclude.append(pat[1:])
        elif pat.startswith("&"):
            intersect.append(pat[1:])
        else:
            include.append(pat)

    def hits(t: Target, pat: str) -> bool:
        return fnmatch.fnmatchcase(t.name, pat) or any(fnmatch.fnmatchcase(g, pat) for g in t.groups)

    out = [t for t in all_targets if not include or any(hits(t, p) for p in include)]
    out = [t for t in out if all(hits(t, p) for p in intersect)]
    return [t for t in out if not any(hits(t, p) for p in exclude)]


def load(inventory: Path, limit: str | None = None, *, use_cache: bool = True) -> list[Target]:
    return select(targets(ansible_list(inventory, use_cache=use_cache), inventory), limit)
