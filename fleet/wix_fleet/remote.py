"""What runs on a box: small stdlib-only Python programs for the box's /usr/bin/python3
(Debian bookworm: 3.11), one SSH command each, so a sweep costs one round trip per box.

They only read, except `test_print` (queues a test page through the service, like the
deploy's health gate) and `exec` (the operator's own command).
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from .inventory import Target

PYTHON = "/usr/bin/python3"
RC_MARKER = "__wix_fleet_rc="

# One JSON object on stdout. Every probe is guarded: a box with a broken service must
# still say what it can (release, disk, backups) rather than nothing.
STATUS_PROBE = r"""
import glob, json, os, subprocess, sys, time, tomllib, urllib.request
a = json.loads(sys.argv[1])
out = {"now": time.time()}
def run(*argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=3).stdout.strip()
    except Exception:
        return ""
cfg = {}
try:
    with open(a["config"], "rb") as f:
        cfg = tomllib.load(f)
except Exception as e:
    out["config_error"] = f"{type(e).__name__}: {e}"
cur = a["root"] + "/current"
out["release"] = os.path.basename(os.path.realpath(cur)) if os.path.islink(cur) else None
try:
    with open("/proc/uptime") as f:
        out["uptime_s"] = float(f.read().split()[0])
except Exception:
    pass
out["service"] = run("systemctl", "is-active", a["unit"]) or "unknown"
http = cfg.get("http", {})
host = http.get("host") or "127.0.0.1"
host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
try:
    url = "http://%s:%s/status" % (host, http.get("port", 8080))
    with urllib.request.urlopen(url, timeout=a["http_timeout"]) as r:
        out["status"] = json.load(r)
except Exception as e:
    out["status_error"] = f"{type(e).__name__}: {e}"
store = cfg.get("store", {})
bdir = store.get("backup_dir") or "/var/backups/wix-printer"
times = [os.path.getmtime(p) for p in glob.glob(os.path.join(bdir, "*")) if os.path.isfile(p)]
out["last_backup_at"] = max(times) if times else None
dbdir = os.path.dirname(store.get("path") or "/var/lib/wix-printer/queue.db")
try:
    st = os.statvfs(dbdir if os.path.isdir(dbdir) else "/")
    out["disk_free_bytes"] = st.f_bavail * st.f_frsize
    out["disk_total_bytes"] = st.f_blocks * st.f_frsize
except OSError:
    pass
# The tunnel to the fleet relay (role tunnel, or [tunnel] in the boot file). autossh runs
# ssh as its child, and that ssh exits when the connection or one of its forwards fails
# (ExitOnForwardFailure, ServerAlive*), so an ssh child older than its ConnectTimeout
# holds both forwards.
unit = dict(l.partition("=")[::2] for l in run("systemctl", "show", "wix-tunnel.service", "-p",
                                                 "LoadState,UnitFileState,ActiveState,MainPID").splitlines())
if unit.get("LoadState") == "loaded" and unit.get("UnitFileState") == "enabled":
    tun = {"active": unit.get("ActiveState") or "unknown", "ssh_age_s": None}
    main = unit.get("MainPID", "0")
    try:
        hz = os.sysconf("SC_CLK_TCK")
        # Only while autossh runs (MainPID 0: stopped): find its ssh child by parent pid.
        for pid in filter(str.isdigit, os.listdir("/proc") if main not in ("", "0") else ()):
            try:
                f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if f[1] == main:
                tun["ssh_age_s"] = round(out["uptime_s"] - int(f[19]) / hz, 1)
                break
    except Exception:
        pass
    out["tunnel"] = tun
try:
    with open("/proc/device-tree/model") as f:
        out["model"] = f.read().strip("\x00\n ")
except OSError:
    out["model"] = None
# Only on a Pi: a container or VM would show the host's sensors as the box's.
if out["model"] and "Raspberry Pi" in out["model"]:
    try:
        with open("/sys/class/thermal/thermal_zone0/temp") as f:
            out["temp_c"] = int(f.read()) / 1000
    except (OSError, ValueError):
        pass
print(json.dumps(out))
"""

# The support bundle's contents as one JSON object {file name: text}. Secrets stay on the
# box: secrets.toml is never read, and secret-looking keys in config.toml are blanked.
DIAGNOSE = r"""
import json, os, re, socket, sqlite3, subprocess, sys, time, tomllib, urllib.request
a = json.loads(sys.argv[1])
files = {}
def run(*argv, timeout=10):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return p.stdout + (("\n[stderr]\n" + p.stderr) if p.stderr.strip() else "")
    except Exception as e:
        return f"{type(e).__name__}: {e}\n"
SECRET = re.compile(r"(?i)^(\s*[\w.-]*(password|passwd|secret|token|api_key|apikey|private|hash)[\w.-]*\s*=\s*).*$")
cfg = {}
try:
    raw = open(a["config"], encoding="utf-8").read()
    cfg = tomllib.loads(raw)
    files["config.toml"] = "\n".join(SECRET.sub(r"\1\"<redacted>\"", l) for l in raw.splitlines()) + "\n"
except Exception as e:
    files["config.toml"] = f"unreadable: {type(e).__name__}: {e}\n"
http = cfg.get("http", {})
host = http.get("host") or "127.0.0.1"
host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
for path in ("status", "health"):
    try:
        with urllib.request.urlopen("http://%s:%s/%s" % (host, http.get("port", 8080), path), timeout=3) as r:
            files[path + ".json"] = json.dumps(json.load(r), indent=2, ensure_ascii=False) + "\n"
    except Exception as e:
        body = getattr(e, "read", lambda: b"")()
        files[path + ".json"] = json.dumps({"error": f"{type(e).__name__}: {e}",
                                            "body": body.decode(errors="replace")}, indent=2) + "\n"
files["journal.txt"] = run("journalctl", "--no-pager", "-o", "short-iso", "-n", str(a["lines"]),
                           "-u", a["unit"], "-u", "wix-printer*", "-u", "wix-devprinter*")
files["systemctl-status.txt"] = run("systemctl", "status", "--no-pager", "-l", "--lines=0", "wix-printer*",
                                    "wix-devprinter*")
files["releases.txt"] = run("ls", "-la", a["root"], a["root"] + "/releases")
files["system.txt"] = "\n".join(run(*c) for c in (("uname", "-a"), ("uptime",), ("df", "-h"), ("free", "-m"),
                                                   ("timedatectl",), ("ip", "-brief", "address")))
db = cfg.get("store", {}).get("path") or "/var/lib/wix-printer/queue.db"
try:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    con.row_factory = sqlite3.Row
    rows = con.execute("SELECT * FROM jobs ORDER BY id DESC LIMIT ?", (a["jobs"],)).fetchall()
    jobs = [{k: (f"<{len(r[k])} bytes>" if isinstance(r[k], bytes) else r[k]) for k in r.keys()} for r in rows]
    files["jobs.json"] = json.dumps(jobs, indent=1, ensure_ascii=False) + "\n"
    con.close()
except Exception as e:
    files["jobs.json"] = json.dumps({"error": f"{type(e).__name__}: {e}"}) + "\n"
pr = cfg.get("printer", {})
st = {"config": {k: pr.get(k) for k in ("kind", "host", "port", "confirm")}, "queried_at": time.time()}
if pr.get("kind", "network") == "network" and pr.get("host"):
    # DLE EOT n answers at once even while the printer is stopped. A real printer serves
    # one connection, which the service holds: then there is no answer, and that is said.
    try:
        with socket.create_connection((pr["host"], int(pr.get("port", 9100))), timeout=2) as s:
            s.settimeout(2)
            for n in (1, 2, 3, 4):
                s.sendall(bytes([0x10, 0x04, n]))
                b = s.recv(1)
                st[f"dle_eot_{n}"] = "0x%02x" % b[0] if b else None
    except Exception as e:
        st["error"] = f"{type(e).__name__}: {e}"
        st["note"] = ("no status bytes: the printer serves one connection and the running service holds it;"
                      " service_view is what the service last read from the printer")
else:
    st["note"] = "USB printer: the status bytes are read by the service only (see status.json printer)"
try:
    st["service_view"] = json.loads(files["status.json"]).get("printer")
except Exception:
    pass
files["printer-status.json"] = json.dumps(st, indent=2) + "\n"
print(json.dumps(files))
"""


def _python(script: str, args: dict[str, Any]) -> str:
    return f"{PYTHON} -c {shlex.quote(script)} {shlex.quote(json.dumps(args))}"


def status_command(t: Target, http_timeout: float = 1.5) -> str:
    return _python(STATUS_PROBE, {"config": t.config, "root": t.root, "unit": t.unit, "http_timeout": http_timeout})


def diagnose_command(t: Target, lines: int = 1000, jobs: int = 50) -> str:
    return _python(DIAGNOSE, {"config": t.config, "root": t.root, "unit": t.unit, "lines": lines, "jobs": jobs})


def with_rc(command: str) -> str:
    """pyinfra reports success as a bool; the exit code itself rides on the last line."""
    return f"{command}; echo; echo {RC_MARKER}$?"


def split_rc(stdout: str) -> tuple[str, int | None]:
    m = re.search(rf"\n?{RC_MARKER}(\d+)\s*$", stdout)
    if not m:
        return stdout, None
    return stdout[: m.start()].rstrip("\n"), int(m.group(1))


def test_print_command(t: Target, wait: float) -> str:
    # As the service user: the CLI reaches the queue database the service owns (0750).
    argv = ["runuser", "-u", t.service_user, "--", f"{t.root}/current/bin/wix-printer", "test-print",
            "--config", t.config, "--wait", str(int(wait))]
    return with_rc(shlex.join(argv) + " 2>&1")


_RELATIVE = re.compile(r"^(\d+)\s*(s|sec|m|min|h|d|w)$")


def journal_since(since: str) -> str:
    """`1h`, `30min`, `2d` become journalctl's relative `-1h`; anything else (a date, `today`)
    is passed through as journalctl understands it."""
    m = _RELATIVE.match(since.strip())
    if m:
        return f"-{m.group(1)}{m.group(2)}"
    return since.strip()


def logs_command(t: Target, since: str, units: list[str] | None = None) -> str:
    argv = ["journalctl", "--no-pager", "-o", "short-iso", "--since", journal_since(since)]
    for u in units or [t.unit, "wix-printer*", "wix-devprinter*"]:
        argv += ["-u", u]
    return with_rc(shlex.join(argv))
