"""Who may use the status page and the operator API.

One admin password (no user accounts: a restaurant has one tablet and one owner), a
bearer token for integrators, and a login limiter. The password is never a default:
it comes from `[api] admin_password_hash` (the boot-partition config moves it there) or
is set once on the first visit and kept in `<state_dir>/admin_password` (mode 0600).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from ..config import Config

log = logging.getLogger(__name__)

PASSWORD_FILE = "admin_password"  # noqa: S105 - a file name, not a password
SECRET_FILE = "session.key"  # noqa: S105
MIN_PASSWORD = 8
MAX_PASSWORD = 256

# scrypt with n=2^14, r=8 takes ~40 ms and 16 MiB on a Pi 4: slow enough to make
# guessing from a stolen file expensive, fast enough for a login.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P,
                        maxmem=_MAXMEM, dklen=32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(dk)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check against `scrypt$n$r$p$salt$hash` or `pbkdf2_sha256$iter$salt$hash`."""
    try:
        parts = stored.strip().split("$")
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt, want = base64.b64decode(parts[4]), base64.b64decode(parts[5])
            got = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=len(want))
        elif parts[0] == "pbkdf2_sha256" and len(parts) == 4:
            salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
            got = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(parts[1]), dklen=len(want))
        else:
            return False
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def valid_hash(stored: str) -> bool:
    parts = stored.strip().split("$")
    return (parts[0] == "scrypt" and len(parts) == 6) or (parts[0] == "pbkdf2_sha256" and len(parts) == 4)


def state_dir(config: Config) -> Path:
    return Path(config.api.state_dir) if config.api.state_dir else Path(config.store.path).parent


def _write_private(path: Path, data: bytes) -> bool:
    """Create `path` 0600 only if it does not exist yet (O_EXCL): the first writer wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def load_session_secret(directory: Path) -> bytes:
    """32 random bytes made on the first start, so logins survive restarts and updates."""
    path = directory / SECRET_FILE
    try:
        if not path.exists():
            _write_private(path, secrets.token_bytes(32))
        data = path.read_bytes()
        if len(data) == 32:
            return data
        log.warning("%s is not 32 bytes; using a temporary session secret", path)
    except OSError as e:
        # A read-only state dir must not stop printing; only the logins are lost at a restart.
        log.warning("cannot keep the session secret in %s (%s); logins end at restart", path, e)
    return secrets.token_bytes(32)


class LoginLimiter:
    """Failed logins per client and in total, in a sliding window.

    Per client so one guesser is stopped after a few tries; in total so many clients
    (or a spoofed forwarding header) cannot multiply the rate.
    """

    def __init__(self, *, per_client: int = 5, total: int = 20, window: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_client = per_client
        self.total = total
        self.window = window
        self.clock = clock
        self._fails: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window:
            q.popleft()

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it may now."""
        now = self.clock()
        q = self._fails.get(client)
        waits = [0.0]
        if q is not None:
            self._trim(q, now)
            if len(q) >= self.per_client:
                waits.append(q[0] + self.window - now)
            if not q:
                del self._fails[client]
        self._trim(self._all, now)
        if len(self._all) >= self.total:
            waits.append(self._all[0] + self.window - now)
        return max(waits)

    def failed(self, client: str) -> None:
        now = self.clock()
        self._fails.setdefault(client, deque()).append(now)
        self._all.append(now)
        if len(self._fails) > 10_000:  # bounded memory under a scan from many addresses
            self._fails.pop(next(iter(self._fails)))

    def succeeded(self, client: str) -> None:
        self._fails.pop(client, None)


class Auth:
    def __init__(self, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.dir = state_dir(config)
        self.password_file = self.dir / PASSWORD_FILE
        self.token = config.api.token
        self.session_seconds = config.api.session_days * 86400
        self.limiter = LoginLimiter()
        # One scrypt at a time: a burst of logins must not take 16 MiB per thread.
        self._hashing = asyncio.Semaphore(1)
        self._file_hash = self._read_file()

    def _read_file(self) -> str:
        with contextlib.suppress(OSError):
            text = self.password_file.read_text(encoding="ascii").strip()
            if valid_hash(text):
                return text
            if text:
                log.warning("%s does not hold a password hash; ignored", self.password_file)
        return ""

    @property
    def source(self) -> str:
        if self.config.api.admin_password_hash:
            return "config"
        return "file" if self._file_hash else ""

    @property
    def password_hash(self) -> str:
        return self.config.api.admin_password_hash or self._file_hash

    @property
    def is_set(self) -> bool:
        return bool(self.password_hash)

    @property
    def fingerprint(self) -> str:
        """Stored in the session: a new password ends every existing login."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:24]

    async def check_password(self, password: str) -> bool:
        stored = self.password_hash
        if not stored or not password or len(password) > MAX_PASSWORD:
            return False
        async with self._hashing:
            return await asyncio.to_thread(verify_password, password, stored)

    async def set_first_password(self, password: str) -> bool:
        """The first visit's password; False when one exists already (someone was first)."""
        if self.is_set:
            return False
        async with self._hashing:
            hashed = await asyncio.to_thread(hash_password, password)
        if not await asyncio.to_thread(_write_private, self.password_file, hashed.encode() + b"\n"):
            self._file_hash = self._read_file()
            return False
        self._file_hash = hashed
        log.warning("status page password set on first visit; stored in %s", self.password_file)
        return True

    def token_ok(self, presented: str) -> bool:
        return bool(self.token) and hmac.compare_digest(presented.encode(), self.token.encode())

    def session_ok(self, session: object) -> bool:
        if not isinstance(session, dict) or not self.is_set:
            return False
        fp, at = session.get("auth"), session.get("at")
        if not isinstance(fp, str) or not isinstance(at, int | float):
            return False
        return hmac.compare_digest(fp, self.fingerprint) and self.clock() - at < self.session_seconds
