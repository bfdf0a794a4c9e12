"""Mail templates: contents in de and en, HTML escaping, overrides, and what `config check` reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from wix_printer.config import Config, MailConfig, RestaurantConfig
from wix_printer.notify import Kind, Renderer, validate_templates
from wix_printer.notify.hours import in_service, parse_hours
from wix_printer.notify.templates import BUILTIN_DIR, PHASES

T0 = 1_717_416_300.0  # 2024-06-03 14:05 Europe/Berlin


def render(kind: Kind, phase: str = "alert", lang: str = "de", restaurant: str = "Imbiss am Boxi", **kw: object):  # type: ignore[no-untyped-def]
    r = Renderer(MailConfig(language=lang, **kw), restaurant)  # type: ignore[arg-type]
    ctx = r.context(kind, phase, {"error": "timeout"}, started_at=T0, now=T0 + 600)  # type: ignore[arg-type]
    return r.render(kind, phase, ctx)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "de", "en"), [
    (Kind.PAPER_OUT, "Drucker: Papier leer", "Printer: out of paper"),
    (Kind.PAPER_LOW, "Drucker: Papier fast leer", "Printer: paper low"),
    (Kind.COVER_OPEN, "Drucker: Klappe offen", "Printer: cover open"),
    (Kind.PRINTER_OFFLINE, "Drucker: nicht erreichbar", "Printer: not reachable"),
    (Kind.INTERNET_DOWN, "Internet: Wix nicht erreichbar", "Internet: Wix unreachable"),
    (Kind.RECOVERY_FAILED, "Wiederherstellung fehlgeschlagen", "Recovery failed"),
    (Kind.ORDERS_STUCK, "Bestellungen hängen", "Orders stuck"),
    (Kind.SERVICE_RESTARTED, "Drucker-Dienst neu gestartet", "Printer service restarted"),
    (Kind.STORAGE_PROBLEM, "Speicher fast voll", "Storage almost full"),
    (Kind.BACKUP_FAILING, "Datensicherung fehlgeschlagen", "Backup failing"),
])
def test_subject_says_what_and_where_body_says_what_to_do(kind: Kind, de: str, en: str) -> None:
    d, e = render(kind), render(kind, lang="en")
    assert d.subject == f"[Imbiss am Boxi] {de}"
    assert e.subject == f"[Imbiss am Boxi] {en}"
    assert "Was tun:" in d.text and "What to do:" in e.text
    assert "<h3" in d.html and "Was tun" in d.html


def test_resolved_has_no_todo_and_shows_the_duration() -> None:
    r = render(Kind.PAPER_OUT, "resolved")
    assert r.subject == "[Imbiss am Boxi] Drucker: Papier wieder da"
    assert "nach 10 Minuten" in r.text and "Was tun" not in r.text
    e = render(Kind.INTERNET_DOWN, "resolved", "en")
    assert "after 10 minutes" in e.text


def test_repeat_summary_in_both_languages() -> None:
    for lang, want in (("de", "Das ist seit 14:05 3 weitere Male passiert."),
                       ("en", "It happened 3 more times since 14:05.")):
        r = Renderer(MailConfig(language=lang), "X")  # type: ignore[arg-type]
        ctx = r.context(Kind.PAPER_OUT, "alert", {}, started_at=T0 + 900, now=T0 + 900, repeats=3,
                        repeats_since=T0)
        assert want in r.render(Kind.PAPER_OUT, "alert", ctx).text


def test_html_escapes_names_and_details() -> None:
    r = render(Kind.INTERNET_DOWN, restaurant="Fish & <Chips>")
    assert r.subject == "[Fish & <Chips>] Internet: Wix nicht erreichbar"
    assert "Fish &amp; &lt;Chips&gt;" in r.html and "<Chips>" not in r.html


def test_builtin_templates_are_valid() -> None:
    assert validate_templates(Config()) == []


@pytest.fixture
def override(tmp_path: Path) -> Path:
    d = tmp_path / "tpl"
    (d / "de").mkdir(parents=True)
    return d


def cfg(d: Path) -> Config:
    return Config(mail=MailConfig(templates_dir=str(d)), restaurant=RestaurantConfig(name="Imbiss am Boxi"))


def test_override_replaces_one_file(override: Path) -> None:
    text = (BUILTIN_DIR / "de" / "paper_out.j2").read_text().replace("Papier leer", "Rolle alle")
    (override / "de" / "paper_out.j2").write_text(text)
    assert validate_templates(cfg(override)) == []
    assert render(Kind.PAPER_OUT, templates_dir=str(override)).subject == "[Imbiss am Boxi] Drucker: Rolle alle"
    assert render(Kind.COVER_OPEN, templates_dir=str(override)).subject == "[Imbiss am Boxi] Drucker: Klappe offen"


@pytest.mark.parametrize(("content", "want"), [
    ("{% block subject %}Papier {{ since }{% endblock %}", "de/paper_out.j2: line 1"),
    ("{% block subject %}{{ sinse }}{% endblock %}{% block body %}{% endblock %}{% block todo %}{% endblock %}"
     "{% block resolved_subject %}x{% endblock %}{% block resolved_body %}{% endblock %}", "'sinse' is undefined"),
    ("{% block subject %}x{% endblock %}", "missing block(s) body, todo, resolved_subject, resolved_body"),
    ("{% block subject %}{{ ''.__class__ }}{% endblock %}{% block body %}{% endblock %}{% block todo %}"
     "{% endblock %}{% block resolved_subject %}x{% endblock %}{% block resolved_body %}{% endblock %}",
     "unsafe"),
])
def test_broken_template_is_reported(override: Path, content: str, want: str) -> None:
    (override / "de" / "paper_out.j2").write_text(content)
    problems = validate_templates(cfg(override))
    assert problems, "a broken template must be refused"
    assert any(want in p for p in problems), problems
    assert all("paper_out" in p for p in problems)


def test_broken_layout_and_bad_service_hours_are_reported(override: Path) -> None:
    (override / "de" / "_mail.txt.j2").write_text("{% if repeats %}unclosed")
    c = Config(mail=MailConfig(templates_dir=str(override), service_hours=["11-14"]))
    problems = validate_templates(c)
    assert any("_mail.txt.j2: line" in p for p in problems)
    assert any("mail.service_hours" in p for p in problems)
    assert validate_templates(Config(mail=MailConfig(templates_dir=str(override / "nope")))) == [
        f"key `mail.templates_dir`: {override / 'nope'} is not a folder"]


def test_broken_override_falls_back_to_builtin_at_runtime(override: Path) -> None:
    (override / "de" / "paper_out.j2").write_text("{% block subject %}{{ nope }}{% endblock %}")
    assert render(Kind.PAPER_OUT, templates_dir=str(override)).subject == "[Imbiss am Boxi] Drucker: Papier leer"


def test_every_language_has_every_file() -> None:
    de = sorted(p.name for p in (BUILTIN_DIR / "de").iterdir())
    en = sorted(p.name for p in (BUILTIN_DIR / "en").iterdir())
    assert de == en
    assert {f"{k}.j2" for k in Kind} <= set(de)
    assert len(PHASES) == 3


def test_service_hours() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Europe/Berlin")
    hours = parse_hours(["11:00-14:30", "22:00-01:00"])
    assert in_service(hours, T0, tz)  # 14:05
    assert not in_service(hours, T0 + 3600, tz)  # 15:05
    assert in_service(hours, T0 + 10 * 3600, tz)  # 00:05, in the range past midnight
    assert not in_service(hours, T0 + 11 * 3600, tz)  # 01:05
    assert in_service([], T0, tz)
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hours(["lunch"])
