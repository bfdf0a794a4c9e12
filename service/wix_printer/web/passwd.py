"""Make a hash for `[api] admin_password_hash`: `python -m wix_printer.web.passwd`.

Reads the password from stdin (one line) or asks for it twice on a terminal, prints the
scrypt hash. The appliance's first boot uses the same function for a password given in
the boot-partition config, so a plain password never stays on the SD card's FAT partition.
"""

from __future__ import annotations

import getpass
import sys

from .auth import MIN_PASSWORD, hash_password


def main() -> int:
    if sys.stdin.isatty():
        pw = getpass.getpass("status page password: ")
        if pw != getpass.getpass("again: "):
            print("the two passwords differ", file=sys.stderr)
            return 1
    else:
        pw = sys.stdin.readline().rstrip("\n")
    if len(pw) < MIN_PASSWORD:
        print(f"at least {MIN_PASSWORD} characters", file=sys.stderr)
        return 1
    print(hash_password(pw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
