"""Deploy and rollback times of one box (warm wheelhouse), against a real systemd box.

Boots one test box from the project's bookworm rootfs (tests/ansible/rootfs.sh), converges
release N, then measures deploy.yml N -> N+1 and rollback.yml N+1 -> N.
Targets: deploy < 60 s, rollback < 15 s. Needs root, podman, mmdebstrap (./dev setup).

    .venv/bin/python bench/bench_deploy.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ansible import boxes


def main() -> int:
    why = boxes.missing_tools()
    if why:
        print(f"bench_deploy: skipped ({why})")
        return 0
    img = boxes.image()
    boxes.ensure_network()
    name, ip = "wix-test-1", boxes.HOSTS["wix-test-1"]
    box = boxes.start(img, name, ip)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            n = boxes.project_variant(Path(tmp) / "n", "1.0.0")
            nxt = boxes.project_variant(Path(tmp) / "next", "1.1.0", migration=True)
            res, t_site = boxes.playbook("site.yml", limit=name, extra={"wheelhouse_project_dir": str(n)})
            assert res.returncode == 0, res.stdout[-3000:]
            # warm the wheelhouse for N+1's dependencies (same lock: already cached)
            res, t_deploy = boxes.playbook("deploy.yml", limit=name, extra={"wheelhouse_project_dir": str(nxt)})
            assert res.returncode == 0, res.stdout[-3000:]
            res, t_rollback = boxes.playbook("rollback.yml", limit=name)
            assert res.returncode == 0, res.stdout[-3000:]
            assert box.get_json("/status")["version"] == "1.0.0"
        print(f"site.yml (fresh box):        {t_site:6.1f} s")
        print(f"deploy.yml N -> N+1:         {t_deploy:6.1f} s   (target < 60 s)")
        print(f"rollback.yml N+1 -> N:       {t_rollback:6.1f} s   (target < 15 s)")
    finally:
        boxes.stop(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
