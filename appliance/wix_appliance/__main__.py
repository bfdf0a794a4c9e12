"""python -m wix_appliance {healthcheck,perfmon,alert,releases,schema,backups,firstboot} ..."""

from __future__ import annotations

import sys

from . import alert, backups, firstboot, healthcheck, perfmon, releases, schema

COMMANDS = {"healthcheck": healthcheck.main, "perfmon": perfmon.main, "alert": alert.main, "releases": releases.main,
            "schema": schema.main, "backups": backups.main, "firstboot": firstboot.main}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m wix_appliance {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
