"""Deploy and rollback times of one box, against a real systemd box over SSH.

Boots one test box from the project's bookworm rootfs (tests/ansible/rootfs.sh), builds
the release archives once (warm wheelhouse: playbooks/wheelhouse.yml, cached by a hash of
the sources), converges release N, then per run: removes N+1 from the box (so every
deploy really uploads and installs it), times deploy.yml N -> N+1 (prebuilt archive,
`--skip-tags wheelhouse`) and rollback.yml N+1 -> N (database restored: the schema is
newer). Once more at the end: deploy.yml with the controller build included (wheel
rebuilt, dependency wheels cached). Targets: deploy < 60 s, rollback < 15 s.
Needs root, podman, mmdebstrap (./dev setup).

    .venv/bin/python bench/bench_deploy.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ansible import boxes
from tests.ansible.conftest import WIX


def run(res_secs: tuple[object, float], what: str) -> float:
    res, secs = res_secs
    if res.returncode != 0:  # type: ignore[attr-defined]
        raise SystemExit(f"{what} failed:\n{res.stdout[-4000:]}")  # type: ignore[attr-defined]
    return secs


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    why = boxes.missing_tools()
    if why:
        print(f"bench_deploy: skipped ({why})")
        return 0
    img = boxes.image()
    boxes.ensure_network()
    name, ip = "wix-test-1", boxes.HOSTS["wix-test-1"]
    deploys: list[float] = []
    rollbacks: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        rel = boxes.build_releases(Path(tmp))
        n, nxt = rel.versions["n"], rel.versions["next"]
        box = boxes.start(img, name, ip)
        try:
            t_site = run(boxes.playbook("site.yml", limit=name, release=rel, version=n, extra=WIX), "site.yml")
            for i in range(args.runs):
                box.exec("rm", "-rf", f"/opt/wix-printer/releases/{nxt}")
                deploys.append(run(boxes.playbook("deploy.yml", limit=name, release=rel, version=nxt, extra=WIX),
                                   "deploy.yml"))
                assert box.get_json("/status")["version"] == nxt
                rollbacks.append(run(boxes.playbook("rollback.yml", limit=name), "rollback.yml"))
                assert box.get_json("/status")["version"] == n
                print(f"run {i + 1}: deploy {deploys[-1]:.1f} s, rollback {rollbacks[-1]:.1f} s", flush=True)
            box.exec("rm", "-rf", f"/opt/wix-printer/releases/{nxt}")
            src = boxes.project_variant(Path(tmp) / "src-next", nxt, migration=True)
            t_built = run(boxes.playbook("deploy.yml", limit=name,
                                         extra={**WIX, "wheelhouse_project_dir": str(src),
                                                "wheelhouse_dir": str(Path(tmp) / "wh"),
                                                "wheelhouse_deps_dir": str(boxes.CACHE / "releases" / "deps")}),
                          "deploy.yml with build")
        finally:
            boxes.stop(name)

    def row(what: str, xs: list[float], target: str) -> str:
        return f"| {what} | {len(xs)} | {statistics.median(xs):.1f} | {max(xs):.1f} | {target} |"

    print("| step (one box) | runs | p50 s | max s | target |")
    print("|---|---|---|---|---|")
    print(row("site.yml, fresh box (release N)", [t_site], "-"))
    print(row("deploy.yml N -> N+1, prebuilt archive (upload, install, migrate, switch, health gate)",
              deploys, "< 60 s"))
    print(row("rollback.yml N+1 -> N (symlink, database restore, restart, /health)", rollbacks, "< 15 s"))
    print(row("deploy.yml N -> N+1 incl. controller wheel build (deps cached)", [t_built], "-"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
