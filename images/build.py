"""Builds the wix-printer SD-card image of one board, reproducibly.

    images/build --board pc-amd64|rpi-arm64 [--update-lock] [--out DIR] [--reuse-bootstrap]

Stages (each printed with its time):
  bootstrap  mmdebstrap a Debian bookworm root (arm64 through qemu-user/binfmt) into a tar,
             cached by the hash of its inputs; the installed packages are checked against
             the board's committed lock (images/locks/<board>.lock)
  configure  unpack it and apply playbooks/image.yml over Ansible's chroot connection:
             the same roles as a fleet deploy, the release installed from a wheelhouse
  clean      remove what makes two builds differ or must be unique per box (host keys,
             machine-id, logs, caches), clamp every mtime to SOURCE_DATE_EPOCH
  assemble   FAT32 boot (RASPIFIRM) + ext4 root (RASPIROOT) made without loop devices
             (mkfs.vfat + mtools, mkfs.ext4 -d), an MBR by sfdisk, fixed ids everywhere
  compress   xz with a fixed block size (same bytes for any thread count)
  manifest   packages.txt (every Debian package and Python wheel), build-info.json, SHA256SUMS

Runs as root (mmdebstrap, chroot, file ownership). Standard library only; runs under the
project's .venv for Ansible.
"""

# A build driver: every subprocess is a fixed tool (PATH as the build runs it) with
# arguments this file makes.
# ruff: noqa: S603, S607
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"
VENV_BIN = ROOT / ".venv" / "bin"
# Bumped whenever the bootstrap recipe below changes in a way the hashed inputs miss.
BOOTSTRAP_RECIPE = 3

# Fixed identities: the same on every build, unique per box only after first boot (the
# root filesystem's UUID is never used to find it: LABEL= is).
DISK_ID = "0x77697870"  # "wixp"
BOOT_VOLID = "57495842"
ROOT_UUID = "6b7a1b0e-3c0f-4d3a-9a55-77697870726f"
ROOT_HASH_SEED = "0d1e6a4b-2f7e-4c59-8b1a-77697870726f"
BOOT_LABEL = "RASPIFIRM"  # what Debian's raspi-firmware and raspi images expect
ROOT_LABEL = "RASPIROOT"

MiB = 1024 * 1024
# 2 GiB in total: fits any card sold today, grows at first boot, and is a power of two,
# which QEMU's raspi3b SD card model insists on.
IMAGE_SIZE = 2048 * MiB
BOOT_START = 4 * MiB
BOOT_SIZE = 256 * MiB

# Every box, both boards: systemd with networkd/resolved (Ethernet by DHCP out of the box,
# Wi-Fi through wpa_supplicant when the boot file asks), time sync (Wix tokens expire),
# growpart to fill the card, and what the roles need to run over chroot (python3-apt).
COMMON_PACKAGES = [
    "systemd", "systemd-sysv", "systemd-resolved", "systemd-timesyncd", "dbus", "udev", "kmod",
    "initramfs-tools", "zstd", "iproute2", "netbase", "ca-certificates", "wpasupplicant",
    "cloud-guest-utils", "fdisk", "e2fsprogs", "dosfstools", "procps", "less", "python3-yaml",
    # The tunnel role's packages: a boot file's [tunnel] section needs them with no network.
    "autossh", "openssh-client",
]


@dataclass(frozen=True)
class Board:
    name: str
    arch: str  # Debian architecture
    machine: str  # Ansible/uname architecture
    packages: list[str]
    components: str = "main"
    # Kernel command line for boards whose boot partition we fill ourselves (pc).
    cmdline: str = ""
    initramfs_modules: list[str] = field(default_factory=list)
    # dpkg options for the bootstrap (rpi: keep the /etc/default/raspi-firmware the setup
    # hook wrote instead of stopping at dpkg's conffile question).
    dpkg_opts: list[str] = field(default_factory=list)


BOARDS = {
    "pc-amd64": Board(
        name="pc-amd64", arch="amd64", machine="x86_64",
        packages=["linux-image-amd64"],
        cmdline=f"root=LABEL={ROOT_LABEL} rw rootwait console=tty0 console=ttyS0,115200 net.ifnames=0",
        initramfs_modules=["ext4", "vfat", "nls_cp437", "nls_ascii", "virtio_pci", "virtio_blk", "virtio_scsi",
                           "virtio_net", "sd_mod", "ahci", "ata_piix", "nvme", "usb_storage", "uas", "xhci_pci",
                           "ehci_pci"],
    ),
    "rpi-arm64": Board(
        name="rpi-arm64", arch="arm64", machine="aarch64",
        packages=["linux-image-arm64", "raspi-firmware", "firmware-brcm80211", "wireless-regdb"],
        components="main non-free-firmware",
        dpkg_opts=["force-confold"],
        # A short list: building the initramfs under emulation is what costs (machine.md).
        initramfs_modules=["ext4", "vfat", "nls_cp437", "nls_ascii", "mmc_block", "sdhci_iproc", "bcm2835",
                           "bcm2835_dma", "dwc2", "usb_storage", "uas", "smsc95xx", "lan78xx", "reset_raspberrypi",
                           "clk_raspberrypi", "raspberrypi_cpufreq", "virtio_blk", "virtio_pci", "virtio_mmio",
                           "virtio_net"],
    ),
}


# --- small helpers --------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"\033[1m==> {msg}\033[0m", flush=True)


def run(argv: list[str], *, env: dict[str, str] | None = None, capture: bool = False,
        logfile: Path | None = None, cwd: Path | None = None) -> str:
    """Runs a command; on failure shows its tail and stops the build."""
    if logfile is not None:
        with logfile.open("a") as fh:
            fh.write(f"\n$ {shlex.join(argv)}\n")
            fh.flush()
            proc = subprocess.run(argv, env=env, cwd=cwd, stdout=fh if not capture else subprocess.PIPE,
                                  stderr=fh, text=True, check=False)
    else:
        proc = subprocess.run(argv, env=env, cwd=cwd, text=True, check=False,
                              stdout=subprocess.PIPE if capture else None)
    if proc.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-40:] if logfile else []
        raise SystemExit("\n".join([*tail, f"error: {shlex.join(argv[:6])} ... exited {proc.returncode}"]))
    return proc.stdout if capture else ""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(4 * MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def source_date_epoch() -> int:
    """The commit's time: the same for every build of that commit, on any machine."""
    env_sde = os.environ.get("SOURCE_DATE_EPOCH")
    if env_sde:
        return int(env_sde)
    out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct"], capture_output=True, text=True,
                         check=False)
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else 0


def git_describe() -> tuple[str, bool]:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, check=False).stdout.strip())
    return commit or "unknown", dirty


# What goes into the image: hashed for the cache, so a test session builds once.
INPUT_PATHS = ["images", "playbooks/image.yml", "roles", "appliance", "service", "pyproject.toml",
               "requirements.lock", "ansible.cfg"]


def inputs_hash(board: str) -> str:
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "--", *INPUT_PATHS],
                           capture_output=True, text=True, check=True).stdout.split()
    h = hashlib.sha256(f"{board}\n{source_date_epoch()}\n".encode())
    for rel in sorted(set(files)):
        p = ROOT / rel
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def host_mirror() -> str:
    """The Debian mirror this machine's apt uses. Found at build time, never written
    into the repository (the image's sources.list gets it, like mmdebstrap does)."""
    if os.environ.get("WIX_IMAGE_MIRROR"):
        return os.environ["WIX_IMAGE_MIRROR"].rstrip("/")
    text = ""
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.is_file():
            text += p.read_text(errors="replace") + "\n"
    for m in re.finditer(r"(https?://\S+?/debian)/?(?:\s|$)", text):
        if "security" not in m.group(1):
            return m.group(1)
    raise SystemExit("no Debian mirror in /etc/apt/sources.list*; set WIX_IMAGE_MIRROR")


def base_role_packages() -> list[str]:
    """The base role's package list, so the bootstrap bakes in what the role installs
    (a converge over chroot then needs no network)."""
    text = (ROOT / "roles" / "base" / "defaults" / "main.yml").read_text()
    m = re.search(r"^base_packages:\n((?:\s+- .+\n)+)", text, re.M)
    return [line.strip()[2:].strip() for line in m.group(1).splitlines()] if m else []


def ensure_binfmt(board: Board) -> None:
    """arm64 programs run through qemu-user: make sure the kernel knows that, the way the
    stock tools do (mount binfmt_misc, update-binfmts --enable), because a shared build
    machine may have had its registration removed; stop with what to do if it cannot."""
    if board.arch == "amd64":
        return
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    entry = binfmt / "qemu-aarch64"
    if not (binfmt / "status").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], check=False,
                       capture_output=True)
    if not entry.exists() and shutil.which("update-binfmts"):
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=False, capture_output=True)
    interp = Path("/usr/libexec/qemu-binfmt/aarch64-binfmt-P")
    if not entry.exists() and (binfmt / "register").exists() and interp.exists():
        # What update-binfmts registers, written directly ("F": the interpreter is opened
        # now, so it also works inside the chroot).
        magic = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
        mask = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
        with suppress(OSError):
            (binfmt / "register").write_text(f":qemu-aarch64:M::{magic}:{mask}:{interp}:FPC")
    if entry.exists() and (binfmt / "status").read_text().strip() == "enabled" \
            and entry.read_text().splitlines()[0] == "enabled":
        return
    raise SystemExit(f"arm64 programs cannot run on this machine: {entry} is missing or disabled. Install "
                     "qemu-user-static and binfmt-support (./dev setup), then as root: mount -t binfmt_misc "
                     "binfmt_misc /proc/sys/fs/binfmt_misc; update-binfmts --enable qemu-aarch64")


def keep_binfmt(board: Board, logfile: Path) -> None:
    """Re-registers qemu-aarch64 whenever it vanishes during the build. systemd flushes every
    binfmt_misc registration of the kernel when it boots (systemd-binfmt writes -1 to
    binfmt_misc/status), and a systemd booting in a container on the same machine (the fleet
    and relay tests' podman boxes) does that to the host's too; any arm64 program started
    before the registration is back fails with "Exec format error" and kills the build. So
    the watch is tight (2 ms) and re-registers by writing the register file directly; it
    narrows the window, it cannot close it (docs/image.md)."""
    if board.arch == "amd64":
        return
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    entry = binfmt / "qemu-aarch64"
    rule = entry.read_text().splitlines() if entry.exists() else []
    fields = dict(line.split(" ", 1) for line in rule if " " in line)
    if not {"interpreter", "magic", "mask"} <= fields.keys():
        return

    def esc(hexstr: str) -> str:
        return "".join(f"\\x{hexstr[i:i + 2]}" for i in range(0, len(hexstr), 2))

    flags = fields.get("flags:", "").strip()
    register = (f":qemu-aarch64:M::{esc(fields['magic'])}:{esc(fields['mask'])}:"
                f"{fields['interpreter']}:{flags}")

    def watch() -> None:
        while True:
            if not entry.exists():
                with suppress(OSError):
                    (binfmt / "register").write_text(register)
                if not entry.exists():
                    with suppress(SystemExit):
                        ensure_binfmt(board)
                with logfile.open("a") as fh:
                    fh.write(f"\n[images/build] qemu-aarch64 binfmt registration vanished (something flushed "
                             f"binfmt_misc); {'re-registered' if entry.exists() else 'could not re-register'}\n")
            time.sleep(0.002)

    threading.Thread(target=watch, daemon=True, name="binfmt").start()


# --- stages ---------------------------------------------------------------------------

@dataclass
class Build:
    board: Board
    out: Path
    work: Path
    cache: Path
    sde: int
    update_lock: bool
    reuse_bootstrap: bool
    logfile: Path
    lock_mode: str = "strict"
    timings: dict[str, float] = field(default_factory=dict)
    version: str = ""

    @property
    def rootdir(self) -> Path:
        return self.work / "root"

    @property
    def lockfile(self) -> Path:
        return IMAGES / "locks" / f"{self.board.name}.lock"

    def env(self) -> dict[str, str]:
        e = dict(os.environ)
        e.update(SOURCE_DATE_EPOCH=str(self.sde), LC_ALL="C.UTF-8", TZ="UTC", PYTHONHASHSEED="0")
        return e

    @contextmanager
    def stage(self, n: int, name: str, what: str) -> Iterator[None]:
        log(f"[{n}/6] {name}: {what}")
        t0 = time.monotonic()
        yield
        took = time.monotonic() - t0
        self.timings[name] = round(took, 1)
        log(f"[{n}/6] {name} done in {took:.1f} s")

    # 1 ------------------------------------------------------------------------------
    def packages(self) -> list[str]:
        return sorted(set(COMMON_PACKAGES + base_role_packages() + self.board.packages))

    @property
    def bootstrap_sde(self) -> int:
        """The bootstrap's own SOURCE_DATE_EPOCH: the time of the commit that last moved the
        board's lock, so one tarball serves every commit until Debian moves (the image's
        files are clamped to the commit's time later anyway)."""
        out = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%ct", "--", str(self.lockfile)],
                             capture_output=True, text=True, check=False).stdout.strip()
        return min(int(out), self.sde) if out else self.sde

    def bootstrap_key(self) -> str:
        recipe: list[object] = [BOOTSTRAP_RECIPE, self.board.name, self.packages(), self.bootstrap_sde,
                                self.board.initramfs_modules, self.board.components]
        if self.board.dpkg_opts:  # only then: the other boards' cached tarballs stay valid
            recipe.append(self.board.dpkg_opts)
        h = hashlib.sha256(json.dumps(recipe).encode())
        # Not the lock: a cached bootstrap is checked against it like a fresh one.
        return h.hexdigest()[:16]

    def bootstrap(self) -> Path:
        tar = self.cache / f"bootstrap-{self.board.name}-{self.bootstrap_key()}.tar"
        pkgs_out = tar.with_suffix(".packages")
        if tar.exists() and pkgs_out.exists() and self.reuse_bootstrap:
            print(f"    reusing {tar.name} (same recipe, package list, lock and SOURCE_DATE_EPOCH)")
        else:
            ensure_binfmt(self.board)
            mirror = host_mirror()
            security = mirror.rsplit("/debian", 1)[0] + "/debian-security"
            comps = self.board.components
            sources = [f"deb {mirror} bookworm {comps}", f"deb {mirror} bookworm-updates {comps}",
                       f"deb {security} bookworm-security {comps}"]
            mods = "\n".join(self.board.initramfs_modules)
            setup = [
                # initramfs: only the listed modules, and built once at the end instead of
                # once per kernel/firmware trigger (28 min -> minutes for arm64 under qemu).
                'mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/boot/firmware"',
                'echo MODULES=list > "$1/etc/initramfs-tools/conf.d/wix-printer.conf"',
                f"printf '%s\\n' {shlex.quote(mods)} > \"$1/etc/initramfs-tools/modules\"",
                # raspi-firmware writes cmdline.txt from these: root by label, the serial
                # console QEMU's raspi3b shows (ttyS1; Bluetooth holds ttyAMA0) and the screen.
                'mkdir -p "$1/etc/default"',
                f"printf 'ROOTPART=LABEL={ROOT_LABEL}\\nCONSOLES=\"ttyS1,115200 tty0\"\\n' "
                '> "$1/etc/default/raspi-firmware"',
            ]
            essential = [
                'chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs',
                'printf "#!/bin/sh\\nexit 0\\n" > "$1/usr/sbin/update-initramfs"',
                'chmod 755 "$1/usr/sbin/update-initramfs"',
            ]
            customize = [
                'rm -f "$1/usr/sbin/update-initramfs"',
                'chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs',
                'chroot "$1" update-initramfs -c -k all',
                f'chroot "$1" dpkg-query -W -f \'${{Package}} ${{Version}} ${{Architecture}}\\n\' '
                f'| LC_ALL=C sort > {shlex.quote(str(pkgs_out))}.part',
            ]
            argv = ["mmdebstrap", "--variant=apt", "--format=tar", f"--architectures={self.board.arch}",
                    f"--include={','.join(self.packages())}", "--aptopt=Acquire::Retries \"3\""]
            argv += [f"--dpkgopt={o}" for o in self.board.dpkg_opts]
            if self.board.dpkg_opts:
                # mmdebstrap leaves them in the root for good; they are for this install only.
                customize.insert(0, 'rm -f "$1/etc/dpkg/dpkg.cfg.d/99mmdebstrap"')
            argv += [f"--setup-hook={h}" for h in setup]
            argv += [f"--essential-hook={h}" for h in essential]
            argv += [f"--customize-hook={h}" for h in customize]
            argv += ["bookworm", f"{tar}.part", *sources]
            print(f"    mmdebstrap {self.board.arch} ({len(self.packages())} packages asked; log: {self.logfile})")
            env = self.env()
            env["SOURCE_DATE_EPOCH"] = str(self.bootstrap_sde)
            run(argv, env=env, logfile=self.logfile)
            os.replace(f"{pkgs_out}.part", pkgs_out)
            os.replace(f"{tar}.part", tar)
        self.check_lock(pkgs_out.read_text())
        return tar

    def check_lock(self, installed: str) -> None:
        header = (f"# Debian packages of the {self.board.name} image (name version arch), checked by every build.\n"
                  f"# Move deliberately: images/build --board {self.board.name} --update-lock\n")
        if self.update_lock:
            self.lockfile.parent.mkdir(parents=True, exist_ok=True)
            self.lockfile.write_text(header + installed)
            print(f"    lock written: {self.lockfile.relative_to(ROOT)}")
            return
        if not self.lockfile.exists():
            raise SystemExit(f"no lock {self.lockfile}: run once with --update-lock and commit it")
        want = {tuple(line.split()) for line in self.lockfile.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
        have = {tuple(line.split()) for line in installed.splitlines() if line.strip()}
        if want != have:
            gone = sorted(want - have)
            new = sorted(have - want)
            lines = [f"  - {' '.join(x)}" for x in gone[:30]] + [f"  + {' '.join(x)}" for x in new[:30]]
            msg = ("the installed packages differ from " + str(self.lockfile.relative_to(ROOT)) + ":\n"
                             + "\n".join(lines) + "\n(Debian moved or the package list changed; review, then "
                             "rebuild with --update-lock and commit the lock)")
            if self.lock_mode == "warn":
                print("    warning: " + msg.replace("\n", "\n    "))
                return
            raise SystemExit(msg)
        print(f"    {len(have)} packages match {self.lockfile.relative_to(ROOT)}")

    # 2 ------------------------------------------------------------------------------
    def unpack(self, tar: Path) -> None:
        if self.rootdir.exists():
            shutil.rmtree(self.rootdir)
        self.rootdir.mkdir(parents=True)
        run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(tar), "-C", str(self.rootdir)],
            logfile=self.logfile)

    def configure(self) -> None:
        ensure_binfmt(self.board)  # again: a cached bootstrap skipped the first check
        inv = self.work / "inventory.yml"
        inv.write_text(json.dumps({"wix_image": {"hosts": {"wix-image": {
            "ansible_host": str(self.rootdir),
            "ansible_connection": "community.general.chroot",
            "ansible_python_interpreter": "/usr/bin/python3",
        }}}}))
        env = self.env()
        env.update(ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
                   PATH=f"{VENV_BIN}:{env.get('PATH', '')}", ANSIBLE_LOCAL_TEMP=str(self.work / "ansible-tmp"),
                   PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)
        playbook = [str(VENV_BIN / "ansible-playbook"), "-i", str(inv), str(ROOT / "playbooks" / "image.yml"),
                    "-e", json.dumps({"image_board": self.board.name, "image_source_date_epoch": str(self.sde),
                                      "wheelhouse_dir": str(self.cache / "wheelhouse"),
                                      # Both roles must name the same folder, or printer_service
                                      # installs whatever older archive var/wheelhouse holds.
                                      "printer_service_wheelhouse_dir": str(self.cache / "wheelhouse")})]
        # A private mount namespace: /proc, /sys and /dev inside the root vanish with it,
        # even if the build is killed.
        script = ('set -e; r="$1"; shift; mount --make-rprivate /; mount -t proc proc "$r/proc"; '
                  'mount -t sysfs sysfs "$r/sys"; mount --rbind /dev "$r/dev"; exec "$@"')
        argv = ["unshare", "--mount", "--", "sh", "-c", script, "sh", str(self.rootdir), *playbook]
        with self.logfile.open("a") as fh:
            fh.write(f"\n$ {shlex.join(playbook)}\n")
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            ntasks = 0
            for line in proc.stdout:
                fh.write(line)
                if line.startswith("TASK ["):
                    ntasks += 1
                    if ntasks % 10 == 0:
                        print(f"    {ntasks} tasks: {line[6:].split(']')[0]}", flush=True)
                elif line.startswith("PLAY RECAP") or line.startswith("wix-image "):
                    print("    " + line.rstrip(), flush=True)
            rc = proc.wait()
        if rc != 0:
            tail = self.logfile.read_text(errors="replace").splitlines()[-40:]
            raise SystemExit("\n".join([*tail, f"error: playbooks/image.yml failed (log: {self.logfile})"]))
        current = self.rootdir / "opt" / "wix-printer" / "current"
        self.version = os.readlink(current).rsplit("/", 1)[-1]

    # 3 ------------------------------------------------------------------------------
    def clean(self) -> None:
        r = self.rootdir
        # Unique per box: regenerated at first boot (firstboot: ssh-keygen -A; systemd:
        # machine-id when the file is empty).
        for p in (r / "etc" / "ssh").glob("ssh_host_*"):
            p.unlink()
        (r / "etc" / "machine-id").write_text("")
        for p in [r / "var/lib/dbus/machine-id", r / "var/lib/systemd/random-seed", r / "var/cache/ldconfig/aux-cache",
                  r / "etc/hostname.dpkg-new"]:
            p.unlink(missing_ok=True)
        # Logs and caches carry build times; Ansible's and pip's leftovers.
        for d in ["var/log", "var/cache/apt", "var/lib/apt/lists", "tmp", "var/tmp", "root/.ansible", "root/.cache"]:
            base = r / d
            for p in sorted(base.rglob("*"), reverse=True) if base.exists() else []:
                if p.is_file() or p.is_symlink():
                    p.unlink()
                elif d != "var/log" and p.is_dir():
                    p.rmdir()
        for p in [*(r / "var/lib/dpkg").glob("*-old"), *(r / "var/cache/debconf").glob("*-old")]:
            p.unlink()
        # The boot partition is the FAT image; in the root it is only a mount point.
        fw = r / "boot" / "firmware"
        self.bootfiles = self.work / "bootfs"
        if self.bootfiles.exists():
            shutil.rmtree(self.bootfiles)
        shutil.copytree(fw, self.bootfiles, symlinks=False)
        shutil.rmtree(fw)
        fw.mkdir(mode=0o755)
        if self.board.arch == "amd64":
            # The pc twin boots its kernel and initrd from the boot partition too (QEMU
            # -kernel/-initrd, the way the Pi's firmware does), with the same cmdline.txt.
            kernel = sorted((r / "boot").glob("vmlinuz-*"))[-1]
            initrd = sorted((r / "boot").glob("initrd.img-*"))[-1]
            shutil.copy2(kernel, self.bootfiles / "vmlinuz")
            shutil.copy2(initrd, self.bootfiles / "initrd.img")
            (self.bootfiles / "cmdline.txt").write_text(self.board.cmdline + "\n")
        template = self.bootfiles / "wix-printer.toml"
        shutil.copy(IMAGES / "files" / "wix-printer.toml", template)
        # Not the checkout's mtime (when git wrote the file, older or newer than the commit).
        os.utime(template, (self.sde, self.sde))
        clamp_mtimes(r, self.sde)
        clamp_mtimes(self.bootfiles, self.sde)

    # 4 ------------------------------------------------------------------------------
    def assemble(self) -> Path:
        env = self.env()
        env["E2FSPROGS_FAKE_TIME"] = str(self.sde)
        boot_img = self.work / "boot.img"
        root_img = self.work / "root.img"
        img = self.out / f"wix-printer-{self.board.name}.img"
        for p in (boot_img, root_img, img):
            p.unlink(missing_ok=True)
        # FAT32: --invariant fixes the volume id and times; mcopy -m keeps the (clamped) mtimes.
        run(["mkfs.vfat", "-C", "--invariant", "-F", "32", "-S", "512", "-i", BOOT_VOLID, "-n", BOOT_LABEL,
             str(boot_img), str(BOOT_SIZE // 1024)], env=env, logfile=self.logfile)
        names = sorted(p.name for p in self.bootfiles.iterdir())
        run(["mcopy", "-s", "-p", "-m", "-i", str(boot_img), *[str(self.bootfiles / n) for n in names], "::/"],
            env=env, logfile=self.logfile)
        root_size = IMAGE_SIZE - BOOT_START - BOOT_SIZE
        run(["mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-U", ROOT_UUID, "-T", "default", "-I", "256",
             "-E", f"hash_seed={ROOT_HASH_SEED},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0",
             "-d", str(self.rootdir), str(root_img), f"{root_size // 1024}k"], env=env, logfile=self.logfile)
        # mkfs.ext4 -d (1.47.0) copies each file's atime and ctime, which no one can set
        # on the source tree; debugfs pins both to SOURCE_DATE_EPOCH.
        cmds = self.work / "debugfs.cmds"
        with cmds.open("w") as fh:
            for path in sorted_tree(self.rootdir):
                rel = "/" + path.relative_to(self.rootdir).as_posix() if path != self.rootdir else "/"
                # debugfs takes a quoted name as is (no backslash escapes: systemd's
                # "system-systemd\x2dcryptsetup.slice" must be written raw).
                fh.write(f'sif "{rel}" ctime @{self.sde}\nsif "{rel}" atime @{self.sde}\n')
        dlog = self.work / "debugfs.log"
        dlog.unlink(missing_ok=True)
        run(["debugfs", "-w", "-f", str(cmds), str(root_img)], env=env, logfile=dlog)
        # debugfs exits 0 when it cannot find a name; an unpinned ctime is the build time.
        missed = sorted({line.split(": File not found")[0] for line in dlog.read_text(errors="replace").splitlines()
                         if "File not found" in line})
        if missed:
            raise SystemExit(f"debugfs could not pin the times of {len(missed)} files (their names): {missed[:5]}")
        run(["e2fsck", "-fn", str(root_img)], env=env, logfile=self.logfile)
        with img.open("wb") as fh:
            fh.truncate(IMAGE_SIZE)
        table = (f"label: dos\nlabel-id: {DISK_ID}\nunit: sectors\n\n"
                 f"start={BOOT_START // 512}, size={BOOT_SIZE // 512}, type=c, bootable\n"
                 f"start={(BOOT_START + BOOT_SIZE) // 512}, type=83\n")
        subprocess.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(img)], input=table, text=True,
                       check=True, stdout=subprocess.DEVNULL)
        for part, offset in ((boot_img, BOOT_START), (root_img, BOOT_START + BOOT_SIZE)):
            run(["dd", f"if={part}", f"of={img}", "bs=4M", f"seek={offset}", "oflag=seek_bytes", "conv=notrunc,sparse",
                 "status=none"], logfile=self.logfile)
        boot_img.unlink()
        root_img.unlink()
        return img

    # 5 ------------------------------------------------------------------------------
    def compress(self, img: Path) -> Path:
        xz = img.with_name(img.name + ".xz")
        # A fixed block size makes multi-threaded xz output the same for any core count.
        # Level 1: ten times faster than -6 here and only about 12 % larger.
        with xz.open("wb") as fh:
            subprocess.run(["xz", "-1", "-T0", "--block-size=64MiB", "-c", str(img)], stdout=fh, check=True)
        return xz

    # 6 ------------------------------------------------------------------------------
    def manifest(self, img: Path, xz: Path) -> None:
        r = self.rootdir
        debs = run(["chroot", str(r), "dpkg-query", "-W", "-f", "${Package} ${Version} ${Architecture}\\n"],
                   capture=True, env=self.env())
        wheels = []
        site = sorted((r / "opt" / "wix-printer" / "releases" / self.version / "lib").glob("python3*/site-packages"))
        for d in sorted(site[0].glob("*.dist-info")) if site else []:
            meta = (d / "METADATA").read_text(errors="replace")
            name = re.search(r"^Name: (.+)$", meta, re.M)
            ver = re.search(r"^Version: (.+)$", meta, re.M)
            if name and ver:
                wheels.append(f"wheel {name.group(1).strip()} {ver.group(1).strip()}")
        lines = sorted(f"deb {line}" for line in debs.splitlines() if line.strip())
        manifest = self.out / f"wix-printer-{self.board.name}.packages.txt"
        manifest.write_text("\n".join(lines + sorted(wheels, key=str.lower)) + "\n")
        commit, dirty = git_describe()
        info = {
            "board": self.board.name, "debian_arch": self.board.arch, "suite": "bookworm",
            "wix_printer_version": self.version, "git_commit": commit, "git_dirty": dirty,
            "source_date_epoch": self.sde, "image_size": IMAGE_SIZE,
            "partitions": {"boot": {"label": BOOT_LABEL, "fs": "vfat", "start": BOOT_START, "size": BOOT_SIZE,
                                    "volume_id": BOOT_VOLID},
                           "root": {"label": ROOT_LABEL, "fs": "ext4", "start": BOOT_START + BOOT_SIZE,
                                    "uuid": ROOT_UUID}},
            "disk_id": DISK_ID, "packages": len(lines), "wheels": len(wheels),
            "lock": str(self.lockfile.relative_to(ROOT)),
        }
        info_file = self.out / f"wix-printer-{self.board.name}.build-info.json"
        info_file.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        sums = [f"{sha256(p)}  {p.name}" for p in (xz, img, manifest, info_file)]
        (self.out / "SHA256SUMS").write_text("\n".join(sums) + "\n")


def sorted_tree(top: Path) -> Iterator[Path]:
    yield top
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for n in sorted(dirnames + filenames):
            yield Path(dirpath) / n


def clamp_mtimes(top: Path, sde: int) -> None:
    """Every mtime newer than SOURCE_DATE_EPOCH becomes SOURCE_DATE_EPOCH (files from
    .debs keep their older, reproducible times)."""
    for p in sorted_tree(top):
        st = p.lstat()
        if st.st_mtime > sde or st.st_atime != sde:
            m = min(st.st_mtime, sde)
            os.utime(p, (sde, m), follow_symlinks=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="images/build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", required=True, choices=sorted(BOARDS))
    ap.add_argument("--out", type=Path, help="output folder (default var/images/<board>)")
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "images" / "cache",
                    help="bootstrap tarballs and wheels (default var/images/cache)")
    ap.add_argument("--update-lock", action="store_true", help="write the installed packages into the board's lock")
    ap.add_argument("--lock", dest="lock_mode", choices=["strict", "warn"], default="strict",
                    help="strict: stop when the packages differ from the lock (default); warn: say so and go on "
                    "(tests: one test then fails for the lock alone)")
    ap.add_argument("--no-reuse-bootstrap", dest="reuse_bootstrap", action="store_false",
                    help="run mmdebstrap even if a bootstrap tarball with the same inputs is cached")
    ap.add_argument("--keep-root", action="store_true", help="keep the unpacked root folder")
    ap.add_argument("--bootstrap-only", action="store_true",
                    help="stop after the bootstrap stage and print the tarball's path (the reproducibility test "
                    "runs mmdebstrap twice this way)")
    ap.add_argument("--inputs-hash", action="store_true", help="print the hash of the image's inputs and exit")
    args = ap.parse_args(argv)
    if args.inputs_hash:
        print(inputs_hash(args.board))
        return 0
    if os.geteuid() != 0:
        raise SystemExit("images/build runs as root (mmdebstrap, chroot, file owners)")
    board = BOARDS[args.board]
    out = (args.out or ROOT / "var" / "images" / board.name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    work.mkdir(exist_ok=True)
    logfile = out / "build.log"
    logfile.write_text("")
    b = Build(board=board, out=out, work=work, cache=args.cache.resolve(), sde=source_date_epoch(),
              update_lock=args.update_lock, lock_mode=args.lock_mode,
              reuse_bootstrap=args.reuse_bootstrap, logfile=logfile)
    # Hashed now: a commit during the build must not make its image look current.
    stamp = inputs_hash(board.name)
    log(f"building {board.name} (SOURCE_DATE_EPOCH={b.sde}, log: {logfile})")
    ensure_binfmt(board)
    keep_binfmt(board, logfile)
    t0 = time.monotonic()
    with b.stage(1, "bootstrap", "mmdebstrap bookworm " + board.arch):
        tar = b.bootstrap()
    if args.bootstrap_only:
        print(tar)
        return 0
    with b.stage(2, "configure", "playbooks/image.yml over chroot"):
        b.unpack(tar)
        b.configure()
    with b.stage(3, "clean", "per-box identities out, mtimes clamped"):
        b.clean()
    with b.stage(4, "assemble", "FAT32 + ext4 + MBR, no loop devices"):
        img = b.assemble()
    with b.stage(5, "compress", "xz"):
        xz = b.compress(img)
    with b.stage(6, "manifest", "packages, build info, SHA256SUMS"):
        b.manifest(img, xz)
    if not args.keep_root:
        shutil.rmtree(b.rootdir)
    total = time.monotonic() - t0
    times = {**b.timings, "total": round(total, 1)}
    (out / f"wix-printer-{board.name}.build-times.json").write_text(json.dumps(times, indent=2) + "\n")
    (out / "inputs-hash").write_text(stamp + "\n")
    log(f"{xz.relative_to(ROOT) if xz.is_relative_to(ROOT) else xz}: {xz.stat().st_size / MiB:.0f} MiB "
        f"({img.stat().st_size / MiB:.0f} MiB raw) in {total:.0f} s: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in b.timings.items()))
    print((out / "SHA256SUMS").read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
