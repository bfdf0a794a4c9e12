"""The relay tier's little internet on this machine: one podman network (the "internet"),
the relay and two boxes as systemd containers from the project's bookworm rootfs, a fake
Wix per box on the network's gateway address, the integrator's inventory made by
`fleet enrol`. No traffic leaves the machine: every address is loopback, the bridge or a
container on it.

The boxes are converged once directly (the integrator's bench, before the box ships);
then each gets a NAT-like firewall (no new inbound connection) and everything else goes
out from the box: the tunnel to the relay, the search to Wix."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.ansible import boxes

ROOT = boxes.ROOT
VENV_BIN = boxes.VENV_BIN
NETWORK = "wix-relay-net"
SUBNET = "10.89.81.0/24"
GATEWAY = "10.89.81.1"
RELAY = ("wix-relay-relay", "10.89.81.10")
BOXES = {"wix-relay-a": "10.89.81.21", "wix-relay-b": "10.89.81.22"}
WIX_PORTS = {"wix-relay-a": 9301, "wix-relay-b": 9302}
POLL_INTERVAL = 2
RELAY_NAME = "relay.wix-relay.test"
TEST_KEY = boxes.CACHE / "ssh" / "id_ed25519"


def sh(*argv: str, check: bool = True, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    return boxes.sh(*argv, check=check, timeout=timeout, **kw)


def ensure_network() -> None:
    if sh("podman", "network", "exists", NETWORK, check=False).returncode != 0:
        sh("podman", "network", "create", "--subnet", SUBNET, "--gateway", GATEWAY, NETWORK)


def remove_network() -> None:
    # Without -f: a network someone else's container still uses stays.
    sh("podman", "network", "rm", NETWORK, check=False)


def start(img: str, name: str, ip: str) -> tuple[boxes.Box, str]:
    """(the box, its container id): teardown removes by id, never a namesake."""
    sh("podman", "rm", "-f", "-t", "0", name, check=False)
    cid = sh("podman", "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK, "--ip", ip,
             "--privileged", "--pull=never", "--systemd=always", img, "/sbin/init").stdout.strip()
    box = boxes.Box(name, ip)
    wait_port(ip, 22, 60, banner=b"SSH")
    return box, cid


def wait_port(host: str, port: int, timeout: float, banner: bytes | None = None) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1) as s:
                if banner is None or s.recv(8).startswith(banner):
                    return time.monotonic()
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{host}:{port} not up within {timeout:.0f} s")


def can_connect(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --- the integrator's certificate ---------------------------------------------------------
def make_tls(d: Path) -> tuple[str, str, Path]:
    """A test CA and a server certificate for the relay's name and address:
    (cert PEM, key PEM, CA file for clients)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wix-relay test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, RELAY_NAME)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(RELAY_NAME),
                                                        x509.IPAddress(ipaddress.ip_address(RELAY[1]))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file = d / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(), ca_file)


# --- the fake Wix per box --------------------------------------------------------------------
@dataclass
class Wix:
    box: str
    port: int
    key_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Any = None

    @property
    def url(self) -> str:
        return f"http://{GATEWAY}:{self.port}"

    @property
    def instance_id(self) -> str:
        return f"inst-{self.box}"

    def start(self, log: Path) -> None:
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "wix-printer"), "fakewix", "--host", GATEWAY, "--port", str(self.port),
             "--key-out", str(self.key_dir), "--api-key", "test-api-key", "--site-id", f"site-{self.box}",
             "--instance-id", self.instance_id],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(GATEWAY, self.port, 30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.log is not None:
            self.log.close()
            self.log = None

    def signer(self) -> Any:
        from wix_printer.fakewix.signing import WebhookSigner

        return WebhookSigner.from_dir(self.key_dir)

    def add(self, order: dict[str, Any]) -> None:
        req = urllib.request.Request(f"{self.url}/_fake/orders", data=json.dumps(order).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200


_SEQ = [0]


def new_order(tag: str) -> dict[str, Any]:
    """An approved, paid delivery order with a number no other test uses."""
    from wix_printer.fakewix import generate_orders

    _SEQ[0] += 1
    o: dict[str, Any] = generate_orders(1, dt.datetime.now(dt.UTC), seed=500 + _SEQ[0], pickup_share=0.0,
                                        canceled_share=0.0, not_paid_share=0.0)[0]
    number = f"{int(time.time()) % 100000:05d}{_SEQ[0]:03d}"
    o["id"] = f"relay-{tag}-{number}"
    o["number"] = number
    return o


# --- HTTPS to the relay, as Wix does ---------------------------------------------------------
def https(ca: Path, method: str, path: str, body: bytes | None = None, timeout: float = 15) -> int:
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(f"https://{RELAY[1]}{path}", data=body, method=method,
                                 headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def webhook_path_up(fleet: Fleet, box: str) -> bool:
    """The relay reaches the box's service: a bad token is the service's 401 (or 400),
    not nginx's 502/504."""
    return https(fleet.ca, "POST", f"/{box}/webhooks/wix", b"not-a-token", timeout=4) in (400, 401)


# --- the fleet --------------------------------------------------------------------------------
@dataclass
class Fleet:
    img: str
    work: Path
    inv: Path
    boot_inv: Path
    keys: Path
    ca: Path
    release: boxes.Releases
    relay: boxes.Box
    boxes: dict[str, boxes.Box]
    wix: dict[str, Wix]
    enrolled: dict[str, str]  # box -> the [tunnel] section `fleet enrol` printed
    timings: dict[str, float] = field(default_factory=dict)

    def ports(self, box: str) -> tuple[int, int]:
        import yaml  # type: ignore[import-untyped]

        data = yaml.safe_load((self.inv / "group_vars" / "all" / "relay.yml").read_text())
        b = data["relay_boxes"][box]
        return int(b["http_port"]), int(b["ssh_port"])

    def release_args(self) -> list[str]:
        """Deploy the archive built once for the session instead of building one."""
        return ["--skip-tags", "wheelhouse", "-e", f"printer_service_version={self.release.versions['n']}",
                "-e", f"printer_service_wheelhouse_dir={self.release.dir}"]

    def playbook(self, name: str, *args: str, direct: bool = False, timeout: float = 600) -> tuple[
            subprocess.CompletedProcess[str], float]:
        """A playbook against the enrolled inventory; `direct` adds the bench inventory
        (boxes at their container addresses) for the first converge."""
        argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(self.inv)]
        if direct:
            argv += ["-i", str(self.boot_inv)]
        argv += [str(ROOT / "playbooks" / name), *args]
        t0 = time.monotonic()
        res = subprocess.run(argv, env=boxes.env(), text=True, capture_output=True, timeout=timeout, cwd=ROOT)
        return res, time.monotonic() - t0

    def fleet(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = boxes.env()
        env["XDG_CACHE_HOME"] = str(self.work / "cache")
        return subprocess.run([str(VENV_BIN / "fleet"), *args], env=env, text=True, capture_output=True,
                              timeout=timeout, cwd=ROOT)

    def relay_listening(self, port: int) -> bool:
        out = self.relay.exec("ss", "-Htln", f"sport = :{port}", check=False).stdout
        return f":{port}" in out

    def printed(self, box: str, number: str) -> bool:
        """The box's virtual printer has a receipt with this order number."""
        res = self.boxes[box].exec("grep", "-rlF", number, "/var/lib/wix-devprinter", check=False)
        return bool(res.stdout.strip())

    def printed_at(self, box: str, number: str) -> float | None:
        """When the first receipt with this number came out (the file's mtime; the
        containers share this machine's clock)."""
        code = ("import os,sys,glob\nts=[os.stat(f).st_mtime for f in glob.glob('/var/lib/wix-devprinter/*.txt')"
                f" if {number!r} in open(f,errors='replace').read()]\nprint(min(ts) if ts else '')")
        out = self.boxes[box].py(code).strip()
        return float(out) if out else None

    def order_rows(self, box: str, order_id: str) -> int:
        return int(self.boxes[box].sql(f"SELECT count(*) FROM orders WHERE id = '{order_id}'") or 0)

    def host_veth(self, box: str) -> str:
        """The host side of the box's network link."""
        peer = self.boxes[box].exec("cat", "/sys/class/net/eth0/iflink").stdout.strip()
        for line in sh("ip", "-o", "link").stdout.splitlines():
            m = re.match(rf"^{peer}: ([^:@]+)", line)
            if m:
                return m.group(1)
        raise AssertionError(f"no host link with index {peer}")


def wait(cond: Any, timeout: float, what: str, step: float = 0.2) -> float:
    """Seconds until cond() holds; AssertionError after timeout."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            if cond():
                return time.monotonic() - t0
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


NAT = """table inet wix_nat_sim {
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "eth0" ct state established,related accept
        iifname "eth0" drop
    }
}
"""


def write_inventory(work: Path, ca_cert: str, ca_key: str, wix: dict[str, Wix]) -> tuple[Path, Path]:
    inv = work / "inventory"
    (inv / "host_vars").mkdir(parents=True)
    (inv / "group_vars").mkdir()
    (inv / "hosts.yml").write_text(
        "---\n# The relay tier's fleet; relay_hosts.yml and group_vars/all/relay.yml come from `fleet enrol`.\n"
        "all:\n  vars:\n    ansible_user: root\n"
        f"    ansible_ssh_private_key_file: {TEST_KEY}\n"
        "    ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR\n"
        "printers:\n  hosts:\n" + "".join(f"    {b}:\n" for b in BOXES))
    (inv / "group_vars" / "relay.yml").write_text(
        "---\n" + json.dumps({"relay_server_name": RELAY_NAME, "relay_tls_certificate": ca_cert,
                              "relay_tls_private_key": ca_key}) + "\n")
    common = {
        "printer_service_devprinter": True, "printer_service_printer_host": "127.0.0.1",
        "printer_service_printer_port": 9100, "printer_service_restaurant_name": "Testküche",
        "printer_service_health_timeout": 30, "printer_service_health_test_print_wait": 20,
        "base_unattended_upgrades": False, "printer_service_wix_api_key": "test-api-key",
        "printer_service_wix_poll_interval": POLL_INTERVAL, "printer_service_wix_catchup_margin": 120,
    }
    for b, w in wix.items():
        hv = dict(common, printer_service_wix_base_url=w.url, printer_service_wix_site_id=f"site-{b}",
                  printer_service_wix_instance_id=w.instance_id,
                  printer_service_wix_public_key=w.signer().public_key_pem(),
                  tunnel_private_key_file=str(work / "keys" / b / "id_ed25519"))
        (inv / "host_vars" / f"{b}.yml").write_text("---\n" + json.dumps(hv, ensure_ascii=False) + "\n")
    boot = work / "bench.yml"
    boot.write_text("---\n# The integrator's bench: the boxes at their own addresses, before they ship.\n"
                    "printers:\n  hosts:\n" + "".join(
                        f"    {b}:\n      ansible_host: {ip}\n      ansible_ssh_common_args: "
                        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR\n"
                        for b, ip in BOXES.items()))
    return inv, boot


def release_n(work: Path) -> boxes.Releases:
    """Only release N of tests/ansible's set (same cache folder, so either tier reuses it)."""
    t0 = time.monotonic()
    key = boxes._sources_hash()
    dest = boxes.CACHE / "releases" / key
    version = boxes.VARIANTS["n"][0]
    arch = os.uname().machine
    if not (dest / arch / f"wix-printer-{version}.tar").exists():
        inv = work / "controller.yml"
        inv.write_text("printers:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
        shutil.rmtree(work / "n", ignore_errors=True)
        src = boxes.project_variant(work / "n", version)
        argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inv), str(ROOT / "playbooks" / "wheelhouse.yml"),
                "-e", json.dumps({"wheelhouse_project_dir": str(src), "wheelhouse_dir": str(dest),
                                  "wheelhouse_deps_dir": str(boxes.CACHE / "releases" / "deps"),
                                  "wheelhouse_build_isolation": False})]
        res = subprocess.run(argv, env=boxes.env(), text=True, capture_output=True, timeout=900, cwd=ROOT)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    return boxes.Releases(dest, {"n": version}, time.monotonic() - t0)


def enrol(work: Path, inv: Path, box: str, relay_host_key: str) -> str:
    res = subprocess.run(
        [str(VENV_BIN / "fleet"), "enrol", box, "-i", str(inv), "--relay", RELAY[1], "--relay-host-key",
         relay_host_key, "--jump-key", str(TEST_KEY), "--keys-dir", str(work / "keys")],
        env=boxes.env(), text=True, capture_output=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    return res.stdout


def ok(res: subprocess.CompletedProcess[str]) -> None:
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]


def missing_tools() -> str | None:
    why = boxes.missing_tools()
    if why:
        return why
    for tool in ("ssh", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    return None



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
