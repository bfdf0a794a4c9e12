"""`setup-mail` run non-interactively (and once with typed answers) against aiosmtpd."""

from __future__ import annotations

import argparse
import asyncio
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.notify.smtpserver import PASSWORD, USER, Server
from wix_printer.config import load_config
from wix_printer.notify import setup
from wix_printer.store import LATEST, Store

EXISTING = """# Restaurant config, hand-written
[http]
host = "127.0.0.1"   # behind the relay
port = 8080

[store]
path = "{db}"

[mail]
enabled = false
host = "old.example.org"

# printer comment stays
[printer]
kind = "file"
path = "{paper}"

[restaurant]
name = "Imbiss am Boxi"
"""


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    setup.configure_parser(p)
    return p.parse_args(argv)


def flags(server: Server, cfg: Path, cert: tuple[Path, Path], pwfile: Path, *extra: str) -> list[str]:
    return ["--config", str(cfg), "--provider", "custom", "--host", "127.0.0.1", "--port", str(server.port),
            "--security", server.mode, "--username", USER, "--password-file", str(pwfile),
            "--to", "inhaber@example.org,chef@example.org", "--ca-file", str(cert[0]), "--non-interactive", *extra]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    cfg = tmp_path / "etc" / "config.toml"
    cfg.parent.mkdir()
    cfg.write_text(EXISTING.format(db=tmp_path / "var" / "queue.db", paper=tmp_path / "paper.bin"))
    cfg.chmod(0o640)
    return cfg


def test_non_interactive_writes_files_sends_test_mail_and_migrates(
    tmp_path: Path, config_file: Path, cert: tuple[Path, Path], smtp_server: Callable[..., Server],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = smtp_server("starttls")
    pwfile = tmp_path / "pw"
    pwfile.write_text(PASSWORD + "\n")
    before = tomllib.loads(config_file.read_text())
    assert setup.run(parse(flags(server, config_file, cert, pwfile))) == 0

    [m] = server.messages
    assert m.subject == "[Imbiss am Boxi] Test-Mail vom Bondrucker"
    assert m.rcpt_tos == ["inhaber@example.org", "chef@example.org"]
    assert m.login == USER

    secrets = config_file.parent / "secrets.toml"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o640
    text = config_file.read_text()
    assert PASSWORD not in text
    assert "# printer comment stays" in text and "# behind the relay" in text
    after = tomllib.loads(text)
    for section in ("http", "store", "printer", "restaurant"):
        assert after[section] == before[section]
    assert tomllib.loads(secrets.read_text()) == {"mail": {"password": PASSWORD}}

    cfg = load_config(config_file)
    assert cfg.mail.enabled and cfg.mail.host == "127.0.0.1" and cfg.mail.port == server.port
    assert cfg.mail.password == PASSWORD and cfg.mail.username == USER
    assert cfg.mail.recipients == ["inhaber@example.org", "chef@example.org"]

    async def version() -> int:
        async with Store(cfg.store.path) as s:
            return await s.schema_version()

    assert asyncio.run(version()) == LATEST
    assert "test mail sent" in capsys.readouterr().out


def test_wrong_password_writes_nothing(
    tmp_path: Path, config_file: Path, cert: tuple[Path, Path], smtp_server: Callable[..., Server],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = smtp_server("tls")
    pwfile = tmp_path / "pw"
    pwfile.write_text("nope")
    original = config_file.read_text()
    assert setup.run(parse(flags(server, config_file, cert, pwfile))) == 1
    assert config_file.read_text() == original
    assert not (config_file.parent / "secrets.toml").exists()
    assert "login refused" in capsys.readouterr().err
    assert server.messages == []


def test_secrets_elsewhere_and_password_from_env(
    tmp_path: Path, config_file: Path, cert: tuple[Path, Path], smtp_server: Callable[..., Server],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = smtp_server("tls")
    monkeypatch.setenv("SMTP_PW", PASSWORD)
    secrets = tmp_path / "private" / "mail-secrets.toml"
    argv = flags(server, config_file, cert, Path("unused"), "--no-test-mail", "--secrets", str(secrets))
    argv[argv.index("--password-file"):argv.index("--password-file") + 2] = ["--password-env", "SMTP_PW"]
    assert setup.run(parse(argv)) == 0
    assert server.messages == []  # login tested, no mail
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    cfg = load_config(config_file)
    assert cfg.secrets_file == str(secrets) and cfg.mail.password == PASSWORD
    # Running it again keeps the saved password when none is given.
    argv2 = [a for a in argv if a not in ("--password-env", "SMTP_PW")]
    assert setup.run(parse(argv2)) == 0
    assert load_config(config_file).mail.password == PASSWORD


def test_interactive_with_preset_answers(
    tmp_path: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter(["2",  # Outlook.com preset
                    "", "", "",  # host, port, security from the preset
                    "wirt@outlook.com", "", "wirt@example.org", "en", "j"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    monkeypatch.setattr(setup.getpass, "getpass", lambda prompt="": "app-password")
    args = parse(["--config", str(config_file), "--skip-test", "--no-migrate"])
    assert setup.run(args) == 0
    cfg = load_config(config_file)
    assert (cfg.mail.host, cfg.mail.port, cfg.mail.security) == ("smtp-mail.outlook.com", 587, "starttls")
    assert cfg.mail.username == cfg.mail.sender == "wirt@outlook.com"
    assert cfg.mail.recipients == ["wirt@example.org"] and cfg.mail.language == "en"
    assert cfg.mail.password == "app-password"


def test_non_interactive_missing_value_is_an_error(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert setup.run(parse(["--config", str(config_file), "--provider", "gmail", "--non-interactive"])) == 2
    assert "--username" in capsys.readouterr().err
