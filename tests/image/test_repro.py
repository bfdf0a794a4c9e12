"""Reproducibility: the same commit built twice gives the same bytes, and mmdebstrap run
twice gives the same root."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.image import vm

pytestmark = [pytest.mark.image, pytest.mark.repro, pytest.mark.timeout(2400)]


def test_two_builds_give_the_same_bytes(pc_image: vm.Built) -> None:
    """Two builds of HEAD from a clean git worktree (other edits in this working tree cannot
    change the inputs between them) with the same SOURCE_DATE_EPOCH give the same
    SHA256SUMS. When this checkout is itself clean at HEAD (CI), the session's image is
    the first build, so the second one is also built from another path. Both reuse the
    cached bootstrap tarball (docs/image.md: what that leaves unproven)."""
    src = vm.clean_checkout(vm.IMAGES / "repro-src")
    try:
        first = pc_image
        if vm.inputs_hash("pc-amd64", src) != (pc_image.out / "inputs-hash").read_text().strip() or \
                json.loads(pc_image.file("build-info.json").read_text())["git_dirty"]:
            first = vm.build("pc-amd64", vm.IMAGES / "pc-amd64-repro-1", src=src, force=True)
        second = vm.build("pc-amd64", vm.IMAGES / "pc-amd64-repro-2", src=src, force=True)
    finally:
        vm.drop_checkout(src)
    first_sums = (first.out / "SHA256SUMS").read_text()
    second_sums = (second.out / "SHA256SUMS").read_text()
    print(f"\nsecond build {second.seconds:.0f} s" + (f", first {first.seconds:.0f} s" if first.built_now else ""))
    if first_sums != second_sums:
        raise AssertionError(f"builds differ:\n{first_sums}\n{second_sums}\n"
                             + vm.explain_difference(first.img, second.img))
    assert re.search(r"^[0-9a-f]{64}  wix-printer-pc-amd64\.img\.xz$", first_sums, re.M)
    for b in (first, second):
        if b is not pc_image:
            shutil.rmtree(b.out, ignore_errors=True)


def tar_members(tar: Path) -> dict[str, tuple[object, ...]]:
    """Every member of a tarball: type, mode, owner, mtime, size, link target, extended
    attributes and a hash of its content."""
    members: dict[str, tuple[object, ...]] = {}
    with tarfile.open(tar) as tf:
        for m in tf:
            digest = ""
            if m.isfile():
                fh = tf.extractfile(m)
                assert fh is not None
                digest = hashlib.sha256(fh.read()).hexdigest()
            xattrs = sorted((k, v) for k, v in m.pax_headers.items() if k.startswith("SCHILY.xattr."))
            members[m.name] = (m.type, m.mode, m.uid, m.gid, m.mtime, m.size, m.linkname, tuple(xattrs), digest)
    return members


def bootstrap_only(cache: Path, out: Path, *extra: str) -> Path:
    proc = subprocess.run([str(vm.ROOT / "images" / "build"), "--board", "pc-amd64", "--bootstrap-only",
                           "--lock=warn", "--cache", str(cache), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1])


def test_bootstrap_twice_gives_the_same_root(pc_image: vm.Built) -> None:
    """The image builds reuse the cached bootstrap tarball; this shows that mmdebstrap itself
    gives the same root when run again with the same recipe, packages and SOURCE_DATE_EPOCH
    (same mirror, same day: see docs/image.md for builds months apart)."""
    cached = bootstrap_only(vm.IMAGES / "cache", vm.IMAGES / "repro-bootstrap")
    fresh_cache = vm.IMAGES / "repro-bootstrap" / "cache"
    shutil.rmtree(fresh_cache, ignore_errors=True)
    t0 = time.monotonic()
    fresh = bootstrap_only(fresh_cache, vm.IMAGES / "repro-bootstrap", "--no-reuse-bootstrap")
    took = time.monotonic() - t0
    assert fresh.name == cached.name and fresh != cached
    same_bytes = vm.sha256(cached) == vm.sha256(fresh)
    print(f"\nmmdebstrap again: {took:.0f} s; tarball bytes {'identical' if same_bytes else 'differ'}")
    if not same_bytes:
        a, b = tar_members(cached), tar_members(fresh)
        differ = sorted(n for n in a.keys() | b.keys() if a.get(n) != b.get(n))
        # openssh-server's postinst makes random host keys; the clean stage removes them
        # (every box makes its own at first boot), so they never reach an image.
        random_by_design = [n for n in differ if n.startswith("./etc/ssh/ssh_host_")]
        print(f"members that differ: {len(differ)}, of them random by design: {random_by_design}")
        assert set(differ) == set(random_by_design), [(n, a.get(n), b.get(n)) for n in differ[:20]]
    shutil.rmtree(vm.IMAGES / "repro-bootstrap", ignore_errors=True)
