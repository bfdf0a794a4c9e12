"""The project's own image in QEMU (TCG): build it once per input hash, write a
wix-printer.toml onto its boot partition with mtools, boot it with user networking,
reach it through hostfwd, let it reach the host's virtual printer and fake Wix through
guestfwd."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "var" / "images"
BOOT_START = 4 * 1024 * 1024  # images/build.py: BOOT_START
RELAY = Path(__file__).with_name("relay.py")


def missing_tools(board: str = "pc-amd64") -> str | None:
    if os.geteuid() != 0:
        return "needs root (mmdebstrap, chroot, file owners)"
    qemu = "qemu-system-x86_64" if board == "pc-amd64" else "qemu-system-aarch64"
    for tool in ("mmdebstrap", "mkfs.vfat", "mcopy", "sfdisk", "xz", qemu):
        if shutil.which(tool) is None:
            return f"{tool} not installed (./dev setup installs it as root)"
    if not (ROOT / ".venv" / "bin" / "ansible-playbook").exists():
        return "ansible not in .venv"
    return None


@dataclass
class Built:
    out: Path
    board: str
    built_now: bool
    seconds: float

    @property
    def img(self) -> Path:
        return self.out / f"wix-printer-{self.board}.img"

    @property
    def xz(self) -> Path:
        return self.out / f"wix-printer-{self.board}.img.xz"

    def file(self, suffix: str) -> Path:
        return self.out / f"wix-printer-{self.board}.{suffix}"


def inputs_hash(board: str) -> str:
    return subprocess.run([str(ROOT / "images" / "build"), "--board", board, "--inputs-hash"], capture_output=True,
                          text=True, check=True).stdout.strip()


def build(board: str, out: Path | None = None, *, force: bool = False, extra: list[str] | None = None,
          timeout: float = 3600) -> Built:
    """The image of this checkout: reused when var/images/<board> was built from the same
    inputs (images/, roles/, the service, ...), else built now (output in build.log)."""
    out = out or IMAGES / board
    want = inputs_hash(board)
    stamp = out / "inputs-hash"
    done = [out / f"wix-printer-{board}.img", out / f"wix-printer-{board}.img.xz", out / "SHA256SUMS"]
    if not force and stamp.exists() and stamp.read_text().strip() == want and all(p.exists() for p in done):
        return Built(out, board, False, 0.0)
    t0 = time.monotonic()
    proc = subprocess.run([str(ROOT / "images" / "build"), "--board", board, "--out", str(out),
                           "--lock=warn", *(extra or [])], capture_output=True, text=True, timeout=timeout,
                          check=False)
    (out / "test-build.out").write_text(proc.stdout + proc.stderr) if out.exists() else None
    if proc.returncode != 0:
        raise AssertionError(f"images/build --board {board} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return Built(out, board, True, time.monotonic() - t0)


def mcopy_to(img: Path, src: Path, name: str, offset: int = BOOT_START) -> None:
    subprocess.run(["mcopy", "-o", "-i", f"{img}@@{offset}", str(src), f"::/{name}"], check=True)


def mread(img: Path, name: str, offset: int = BOOT_START) -> str | None:
    r = subprocess.run(["mtype", "-i", f"{img}@@{offset}", f"::/{name}"], capture_output=True, check=False)
    return r.stdout.decode("utf-8", "replace") if r.returncode == 0 else None


def mextract(img: Path, name: str, dest: Path, offset: int = BOOT_START) -> Path:
    subprocess.run(["mcopy", "-o", "-i", f"{img}@@{offset}", f"::/{name}", str(dest)], check=True)
    return dest


def http(url: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return int(r.status), r.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


@dataclass
class VM:
    """A pc-amd64 image booted under TCG, kernel/initrd/cmdline from its boot partition."""

    disk: Path
    workdir: Path
    ssh_port: int
    http_port: int
    guestfwd: dict[str, int] = field(default_factory=dict)  # "10.0.2.100:9100" -> host port
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    @property
    def console(self) -> Path:
        return self.workdir / "console.log"

    def start(self) -> VM:
        kernel = mextract(self.disk, "vmlinuz", self.workdir / "vmlinuz")
        initrd = mextract(self.disk, "initrd.img", self.workdir / "initrd.img")
        cmdline = (mread(self.disk, "cmdline.txt") or "").strip()
        net = f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22," \
              f"hostfwd=tcp:127.0.0.1:{self.http_port}-:8080"
        for guest, port in self.guestfwd.items():
            # cmd: one relay per guest connection (a chardev would carry one stream only).
            net += f",guestfwd=tcp:{guest}-cmd:{shutil.which('python3')} {RELAY} {port}"
        argv = ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "1024",
                "-nographic", "-monitor", "none", "-serial", f"file:{self.console}", "-no-reboot",
                "-kernel", str(kernel), "-initrd", str(initrd), "-append", cmdline,
                "-drive", f"file={self.disk},format=raw,if=virtio", "-netdev", net,
                "-device", "virtio-net-pci,netdev=n0"]
        self.started = time.monotonic()
        # QEMU keeps its own copy of the descriptor; ours is closed at once.
        with (self.workdir / "qemu.err").open("wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        return self

    def wait_health(self, timeout: float = 300) -> float:
        """Seconds from power-on until /health answers 200."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"QEMU exited {self.proc.returncode}:\n{self.tail()}")
            code, _ = http(f"http://127.0.0.1:{self.http_port}/health", timeout=3)
            if code == 200:
                return time.monotonic() - self.started
            time.sleep(1)
        raise AssertionError(f"no /health 200 within {timeout} s:\n{self.tail()}")

    def status(self) -> dict[str, object]:
        code, body = http(f"http://127.0.0.1:{self.http_port}/status")
        assert code == 200, code
        data: dict[str, object] = json.loads(body)
        return data

    def ssh(self, key: Path, command: str, check: bool = True, timeout: float = 60) -> str:
        r = subprocess.run(["ssh", "-i", str(key), "-p", str(self.ssh_port), "-o", "StrictHostKeyChecking=no",
                            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
                            "-o", "ConnectTimeout=10", "root@127.0.0.1", command],
                           capture_output=True, text=True, timeout=timeout, check=False)
        if check and r.returncode != 0:
            raise AssertionError(f"ssh {command!r}: {r.returncode} {r.stdout} {r.stderr}")
        return r.stdout

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.console.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def setup_page(base: str, password: str) -> str:
    """Log in to the status page like a browser (cookie + CSRF token) and fetch /setup."""
    import http.cookiejar
    import re
    import urllib.parse

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login", timeout=10).read().decode()
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, page[:500]
    form = urllib.parse.urlencode({"csrf_token": m.group(1), "password": password, "next": "/setup"}).encode()
    return str(opener.open(f"{base}/login", data=form, timeout=30).read().decode())
