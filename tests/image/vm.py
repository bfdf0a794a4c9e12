"""The project's own image in QEMU (TCG): build it once per input hash, write a
wix-printer.toml onto its boot partition with mtools, boot it with user networking,
reach it through hostfwd, let it reach the host's virtual printer and fake Wix through
guestfwd."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import free_port
from wix_printer.fakewix.signing import WebhookSigner

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


def inputs_hash(board: str, src: Path = ROOT) -> str:
    return subprocess.run([str(src / "images" / "build"), "--board", board, "--inputs-hash"], capture_output=True,
                          text=True, check=True).stdout.strip()


def build(board: str, out: Path | None = None, *, force: bool = False, extra: list[str] | None = None,
          timeout: float = 3600, src: Path = ROOT) -> Built:
    """The image of checkout `src` (default this one): reused when `out` (default
    var/images/<board>) was built from the same inputs (images/, roles/, the service, ...),
    else built now (output in build.log). Bootstrap tarballs and wheels are always cached in
    this checkout's var/images/cache."""
    out = out or IMAGES / board
    want = inputs_hash(board, src)
    stamp = out / "inputs-hash"
    done = [out / f"wix-printer-{board}.img", out / f"wix-printer-{board}.img.xz", out / "SHA256SUMS"]
    if not force and stamp.exists() and stamp.read_text().strip() == want and all(p.exists() for p in done):
        return Built(out, board, False, 0.0)
    t0 = time.monotonic()
    proc = subprocess.run([str(src / "images" / "build"), "--board", board, "--out", str(out),
                           "--cache", str(IMAGES / "cache"), "--lock=warn", *(extra or [])], capture_output=True,
                          text=True, timeout=timeout, check=False)
    (out / "test-build.out").write_text(proc.stdout + proc.stderr) if out.exists() else None
    if proc.returncode != 0:
        raise AssertionError(f"images/build --board {board} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return Built(out, board, True, time.monotonic() - t0)


def clean_checkout(dest: Path) -> Path:
    """A git worktree of HEAD at `dest`, sharing this checkout's .venv: what a build of
    the commit sees, whatever is being edited in this working tree meanwhile."""
    if dest.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(dest)], check=False,
                       capture_output=True)
        shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=True)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(dest), "HEAD"], check=True)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def drop_checkout(dest: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(dest)], check=False,
                   capture_output=True)
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(4 * 1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


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
    """An image booted under TCG with kernel, initrd and cmdline from its boot partition."""

    disk: Path
    workdir: Path
    ssh_port: int
    http_port: int
    guestfwd: dict[str, int] = field(default_factory=dict)  # "10.0.2.100:9100" -> host port
    board: str = "pc-amd64"
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0

    @property
    def console(self) -> Path:
        return self.workdir / "console.log"

    def start(self) -> VM:
        net = f"user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22," \
              f"hostfwd=tcp:127.0.0.1:{self.http_port}-:8080"
        for guest, port in self.guestfwd.items():
            # cmd: one relay per guest connection (a chardev would carry one stream only).
            net += f",guestfwd=tcp:{guest}-cmd:{shutil.which('python3')} {RELAY} {port}"
        argv = self.rpi_argv(net) if self.board == "rpi-arm64" else self.pc_argv(net)
        self.started = time.monotonic()
        # QEMU keeps its own copy of the descriptor; ours is closed at once.
        with (self.workdir / "qemu.err").open("wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        return self

    def pc_argv(self, net: str) -> list[str]:
        kernel = mextract(self.disk, "vmlinuz", self.workdir / "vmlinuz")
        initrd = mextract(self.disk, "initrd.img", self.workdir / "initrd.img")
        cmdline = (mread(self.disk, "cmdline.txt") or "").strip()
        return ["qemu-system-x86_64", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "1024",
                "-nographic", "-monitor", "none", "-serial", f"file:{self.console}", "-no-reboot",
                "-kernel", str(kernel), "-initrd", str(initrd), "-append", cmdline,
                "-drive", f"file={self.disk},format=raw,if=virtio", "-netdev", net,
                "-device", "virtio-net-pci,netdev=n0"]

    def rpi_argv(self, net: str) -> list[str]:
        """What the Pi's firmware would load, read from the image's own config.txt and
        cmdline.txt (raspi-firmware writes both): kernel, initramfs, the Pi 3 B device tree."""
        config = mread(self.disk, "config.txt") or ""
        kernel = re.search(r"^kernel=(\S+)", config, re.M)
        initrd = re.search(r"^initramfs (\S+)", config, re.M)
        assert kernel and initrd, config
        k = mextract(self.disk, kernel.group(1), self.workdir / "kernel")
        i = mextract(self.disk, initrd.group(1), self.workdir / "initrd")
        dtb = mextract(self.disk, "bcm2837-rpi-3-b.dtb", self.workdir / "board.dtb")
        # QEMU's raspi3b does not emulate the watchdog's timer: arming it (systemd does, with
        # the base role's RuntimeWatchdogSec) resets the machine at once, so the emulated
        # board runs without the watchdog driver. On a Pi the watchdog works as intended.
        cmdline = (mread(self.disk, "cmdline.txt") or "").strip() + " modprobe.blacklist=bcm2835_wdt"
        # The Pi 3's console is the mini UART, QEMU's second serial port (ttyS1).
        return ["qemu-system-aarch64", "-M", "raspi3b", "-accel", "tcg,thread=multi", "-m", "1G", "-smp", "4",
                "-nographic", "-monitor", "none", "-serial", "null", "-serial", f"file:{self.console}",
                "-no-reboot", "-kernel", str(k), "-initrd", str(i), "-dtb", str(dtb), "-append", cmdline,
                "-drive", f"file={self.disk},format=raw,if=sd", "-netdev", net, "-device", "usb-net,netdev=n0"]

    def reboot(self, key: Path, timeout: float = 240) -> VM:
        """A power cycle as the owner does it: shut down (QEMU exits: -no-reboot), start again."""
        self.ssh(key, "systemctl reboot", check=False, timeout=30)
        try:
            if self.proc is not None:
                self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass  # a clean shutdown is not the claim; the next power-on is
        self.stop()
        return self.start()

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
    import urllib.parse

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login", timeout=10).read().decode()
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert m, page[:500]
    form = urllib.parse.urlencode({"csrf_token": m.group(1), "password": password, "next": "/setup"}).encode()
    return str(opener.open(f"{base}/login", data=form, timeout=30).read().decode())


def explain_difference(a: Path, b: Path, limit: int = 200) -> str:
    """Where two images of the same build differ, diffoscope-style but with the tools at
    hand: the partition (MBR, boot FAT, root ext4) of each differing 4 KiB block and, for
    ext4, the inodes and paths that own them (debugfs icheck/ncheck)."""
    block = 4096
    root_start = BOOT_START + 256 * 1024 * 1024  # images/build.py: BOOT_START + BOOT_SIZE
    differ: list[int] = []
    with a.open("rb") as fa, b.open("rb") as fb:
        n = 0
        while True:
            x, y = fa.read(block * 256), fb.read(block * 256)
            if not x and not y:
                break
            if x != y:
                differ += [n + i for i in range(0, max(len(x), len(y)) // block)
                           if x[i * block:(i + 1) * block] != y[i * block:(i + 1) * block]]
            n += 256
    if not differ:
        return "the raw images are identical"
    mbr = [d for d in differ if d * block < BOOT_START]
    fat = [d for d in differ if BOOT_START <= d * block < root_start]
    ext = [d - root_start // block for d in differ if d * block >= root_start]
    lines = [f"{len(differ)} blocks of 4 KiB differ: MBR/gap {len(mbr)}, boot FAT {len(fat)}, root ext4 {len(ext)}"]
    if ext:
        part = a.parent / f".{a.name}.root"
        subprocess.run(["dd", f"if={a}", f"of={part}", "bs=4M", f"skip={root_start}", "iflag=skip_bytes",
                        "status=none"], check=True)
        try:
            icheck = subprocess.run(["debugfs", "-R", "icheck " + " ".join(map(str, ext[:limit])), str(part)],
                                    capture_output=True, text=True, check=False).stdout
            owners: dict[str, list[str]] = {}
            for line in icheck.splitlines()[1:]:
                blk, _, ino = line.partition("\t")
                owners.setdefault(ino.strip(), []).append(blk.strip())
            inodes = [i for i in owners if i.isdigit()]
            ncheck = subprocess.run(["debugfs", "-R", "ncheck " + " ".join(inodes), str(part)],
                                    capture_output=True, text=True, check=False).stdout if inodes else ""
            paths = {ln.split("\t")[0].strip(): ln.split("\t", 1)[1].strip()
                     for ln in ncheck.splitlines()[1:] if "\t" in ln}
            meta = "(metadata: superblock, group descriptors, bitmaps, inode tables or journal)"
            for ino, blks in sorted(owners.items(), key=lambda kv: -len(kv[1])):
                more = "..." if len(blks) > 5 else ""
                lines.append(f"  ext4 blocks {','.join(blks[:5])}{more}: inode {ino} {paths.get(ino, meta)}")
        finally:
            part.unlink(missing_ok=True)
    return "\n".join(lines)


@dataclass
class Card:
    """A booted-to-be box: its VM, the SSH key its owner's file authorises, the key that
    signs its webhooks and the folder where the host's virtual printer writes."""

    machine: VM
    key: Path
    signer: WebhookSigner
    paper: Path


def prepare_card(image: Path, workdir: Path, size: int, host_peers: dict[str, object],
                 board: str = "pc-amd64") -> Card:
    """A copy of `image` on a bigger "card" of `size` bytes (first boot grows root into
    it), a fresh SSH key, the owner's file written onto its boot partition with mtools,
    and a VM (not started) wired to the host's virtual printer and fake Wix."""
    disk = workdir / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(image), str(disk)], check=True)
    os.truncate(disk, size)
    key = workdir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    keys, paper = host_peers["keys"], host_peers["paper"]
    assert isinstance(keys, Path) and isinstance(paper, Path)
    signer = WebhookSigner.from_dir(keys)
    boot_file = workdir / "wix-printer.toml"
    boot_file.write_text(owner_file(signer.public_key_pem(), key.with_suffix(".pub").read_text().strip()))
    mcopy_to(disk, boot_file, "wix-printer.toml")
    machine = VM(disk=disk, workdir=workdir, ssh_port=free_port(), http_port=free_port(), board=board,
                 guestfwd={"10.0.2.100:9100": int(str(host_peers["printer_port"])),
                           "10.0.2.101:8000": int(str(host_peers["wix_port"]))})
    return Card(machine, key, signer, paper)


def owner_file(pub_key: str, ssh_pub: str) -> str:
    """What a restaurant writes: the shipped template filled in."""
    text = (ROOT / "images/files/wix-printer.toml").read_text()
    values = {
        ("box", "hostname"): '"boxi-test"', ("box", "timezone"): '"Europe/Zurich"',
        ("box", "admin_password"): '"kitchen-secret-1"', ("box", "ssh_keys"): json.dumps([ssh_pub]),
        ("wix", "public_key"): f'"""\n{pub_key}"""', ("wix", "api_key"): '"test-api-key"',
        ("wix", "site_id"): '"site-1"', ("printer", "host"): '"10.0.2.100"',
        ("restaurant", "name"): '"Testküche im Image"',
    }
    out, section = [], ""
    for line in text.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        key = line.split(" =")[0]
        out.append(f"{key} = {values[(section, key)]}" if (section, key) in values else line)
    # The fake Wix through guestfwd (an advanced key the template does not list).
    body = "\n".join(out) + "\n"
    return body.replace("[wix]\n", '[wix]\nbase_url = "http://10.0.2.101:8000"\n', 1)
