"""Real test boxes for the Ansible tests: podman containers booted with systemd from the
project's own bookworm rootfs (tests/ansible/rootfs.sh), reached over SSH, and the
playbooks run against them exactly as against a fleet."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("WIX_ANSIBLE_CACHE", ROOT / "var" / "ansible"))
VENV_BIN = ROOT / ".venv" / "bin"
NETWORK = "wixtest"
SUBNET = "10.89.77.0/24"
HOSTS = {"wix-test-1": "10.89.77.11", "wix-test-2": "10.89.77.12", "wix-test-3": "10.89.77.13"}
# The releases the tests deploy: N (this checkout), N+1 (one more expand-only migration),
# N+2 broken (migrates, then its service never comes up).
VARIANTS = {"n": ("1.0.0", {}), "next": ("1.1.0", {"migration": True}),
            "broken": ("1.2.0", {"migration": True, "broken": True})}


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["CONTAINERS_CONF"] = str(CACHE / "containers.conf")
    e["PATH"] = f"{VENV_BIN}:{e.get('PATH', '')}"
    e["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    e["ANSIBLE_FORCE_COLOR"] = "0"
    e["ANSIBLE_NOCOLOR"] = "1"
    e.pop("PYTHONPATH", None)
    return e


def missing_tools() -> str | None:
    if os.geteuid() != 0:
        return "needs root (podman with systemd containers, mmdebstrap)"
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None:
            return f"{tool} not installed (./dev setup installs it as root)"
    if not (VENV_BIN / "ansible-playbook").exists():
        return "ansible not in .venv (the ops extra)"
    return None


def sh(*argv: str, check: bool = True, timeout: float = 600, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=env(), text=True, capture_output=True, check=check, timeout=timeout, **kw)  # type: ignore[call-overload]


def image() -> str:
    out = sh(str(ROOT / "tests" / "ansible" / "rootfs.sh"), timeout=900).stdout.strip().splitlines()
    return out[-1]


def ensure_network() -> None:
    if sh("podman", "network", "exists", NETWORK, check=False).returncode != 0:
        sh("podman", "network", "create", "--subnet", SUBNET, NETWORK)


@dataclass
class Box:
    name: str
    ip: str
    converge_seconds: float = 0.0

    def exec(self, *argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return sh("podman", "exec", self.name, *argv, check=check, timeout=timeout)

    def py(self, code: str, python: str = "/usr/bin/python3") -> str:
        return self.exec(python, "-c", code).stdout

    def get_json(self, path: str, port: int = 8080) -> dict:
        url = f"http://127.0.0.1:{port}{path}"
        code = f"import urllib.request,sys;sys.stdout.write(urllib.request.urlopen('{url}',timeout=5).read().decode())"
        return json.loads(self.py(code))

    def http_status(self, path: str, port: int = 8080) -> int:
        url = f"http://127.0.0.1:{port}{path}"
        code = (f"import urllib.request,urllib.error\ntry:\n print(urllib.request.urlopen('{url}',timeout=5).status)\n"
                "except urllib.error.HTTPError as e:\n print(e.code)\nexcept OSError:\n print(0)")
        return int(self.py(code).strip())

    def post(self, url: str) -> None:
        req = f"urllib.request.Request('{url}',method='POST',data=b'')"
        self.py(f"import urllib.request;urllib.request.urlopen({req},timeout=5)")

    def sql(self, query: str, db: str = "/var/lib/wix-printer/queue.db") -> str:
        return self.exec("sqlite3", db, query).stdout.strip()

    def current_release(self) -> str:
        return os.path.basename(self.exec("readlink", "/opt/wix-printer/current").stdout.strip())


def start(img: str, name: str, ip: str) -> Box:
    sh("podman", "rm", "-f", "-t", "0", name, check=False)
    sh("podman", "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK, "--ip", ip,
       "--privileged", "--pull=never", "--systemd=always", img, "/sbin/init")
    box = Box(name, ip)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((ip, 22), timeout=1) as s:
                if s.recv(4).startswith(b"SSH"):
                    return box
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{name}: sshd not up within 60 s")


def snapshot(box: Box, tag: str) -> str:
    """Commit a converged box as an image, so further boxes boot already converged."""
    img = f"localhost/wix-converged:{tag}"
    sh("podman", "commit", "--quiet", box.name, img)
    return img


def stop(name: str) -> None:
    sh("podman", "rm", "-f", "-t", "0", name, check=False)


def playbook(name: str, *args: str, limit: str | None = None, extra: dict | None = None,
             release: Releases | None = None, version: str | None = None,
             timeout: float = 900) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a playbook against the test inventory. With `release` and `version`, the
    controller build is skipped (`--skip-tags wheelhouse`) and the archive built once per
    session is deployed."""
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(ROOT / "inventory" / "test" / "hosts.yml"),
            str(ROOT / "playbooks" / name), *args]
    if limit:
        argv += ["-l", limit]
    if release is not None and version is not None:
        argv += ["--skip-tags", "wheelhouse", "-e", json.dumps(
            {"printer_service_version": version, "printer_service_wheelhouse_dir": str(release.dir)})]
    if extra:
        argv += ["-e", json.dumps(extra)]
    t0 = time.monotonic()
    res = subprocess.run(argv, env=env(), text=True, capture_output=True, timeout=timeout, cwd=ROOT)
    return res, time.monotonic() - t0


@dataclass
class Releases:
    """Release archives for the test variants: <dir>/<arch>/wix-printer-<version>.tar."""

    dir: Path
    versions: dict[str, str]
    build_seconds: float


def _sources_hash() -> str:
    h = hashlib.sha256()
    files = [ROOT / f for f in ("pyproject.toml", "README.md", "requirements.lock", "tests/ansible/boxes.py")]
    for d in ("service", "appliance", "roles/wheelhouse"):
        files += sorted(p for p in (ROOT / d).rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts and ".egg-info" not in str(p))
    for f in files:
        h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_releases(work: Path) -> Releases:
    """Build the three variants' archives once, with the wheelhouse role on the controller
    (playbooks/wheelhouse.yml), cached under var/ansible/releases/<hash of the sources>."""
    t0 = time.monotonic()
    key = _sources_hash()
    base = CACHE / "releases"
    dest = base / key
    base.mkdir(parents=True, exist_ok=True)
    # ./dev test runs the image lane beside the fleet tests: both may want the same archives.
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_releases_locked(work, key, base, dest, t0)


def _build_releases_locked(work: Path, key: str, base: Path, dest: Path, t0: float) -> Releases:
    arch = os.uname().machine
    # Keep the newest few builds: another session (or a fleet test) may still deploy one.
    if base.exists():
        builds = sorted((d for d in base.iterdir() if d.is_dir() and d.name not in (key, "deps")),
                        key=lambda d: d.stat().st_mtime, reverse=True)
        for old in builds[3:]:
            shutil.rmtree(old, ignore_errors=True)
    inv = work / "controller.yml"
    inv.write_text("printers:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    for variant, (version, kw) in VARIANTS.items():
        if (dest / arch / f"wix-printer-{version}.tar").exists():
            continue
        src = project_variant(work / variant, version, **kw)
        argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inv), str(ROOT / "playbooks" / "wheelhouse.yml"),
                "-e", json.dumps({"wheelhouse_project_dir": str(src), "wheelhouse_dir": str(dest),
                                  "wheelhouse_deps_dir": str(base / "deps"),
                                  "wheelhouse_build_isolation": False})]
        res = subprocess.run(argv, env=env(), text=True, capture_output=True, timeout=900, cwd=ROOT)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    return Releases(dest, {k: v for k, (v, _) in VARIANTS.items()}, time.monotonic() - t0)


def recap(res: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for m in re.finditer(r"^(\S+)\s+:\s+(ok=.*)$", res.stdout, re.M):
        out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


def project_variant(dest: Path, version: str, *, migration: bool = False, broken: bool = False) -> Path:
    """A copy of this project as release `version`: optionally with one more expand-only
    migration, optionally with a `serve` that exits at once (fails any health gate)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in ("pyproject.toml", "README.md", "requirements.lock"):
        shutil.copy2(ROOT / f, dest / f)
    for d in ("service", "appliance"):
        shutil.copytree(ROOT / d, dest / d, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    vf = dest / "service" / "wix_printer" / "_version.py"
    vf.write_text(re.sub(r'(?m)^__version__ = ".*"$', f'__version__ = "{version}"', vf.read_text()))
    if migration:
        schema = dest / "service" / "wix_printer" / "store" / "schema.py"
        schema.write_text(schema.read_text() + (
            "\n\n# test release: one more expand-only step\n"
            "MIGRATIONS = (*MIGRATIONS, Migration(MIGRATIONS[-1].version + 1, 'deploy probe',"
            " 'CREATE TABLE deploy_probe (x INTEGER)', 'DROP TABLE deploy_probe'))\n"
            "LATEST = MIGRATIONS[-1].version\n"))
    if broken:
        cli = dest / "service" / "wix_printer" / "cli.py"
        cli.write_text(cli.read_text().replace(
            "from __future__ import annotations\n",
            "from __future__ import annotations\n\nimport sys as _sys\n\n"
            "if 'serve' in _sys.argv:  # test release: the service never comes up\n"
            "    raise SystemExit('broken release for the rollback test')\n", 1))
    return dest
