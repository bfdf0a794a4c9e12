"""Mail templates: files a restaurant can adapt, rendered in a sandbox.

Each kind has one file per language (`de/paper_out.j2`) with the blocks `subject`,
`body`, `todo`, `resolved_subject` and `resolved_body`; three layout files per language
(`_subject.txt.j2`, `_mail.txt.j2`, `_mail.html.j2`) put them together. A folder in
`mail.templates_dir` overrides the built-in files one by one, so a restaurant copies only
what it wants to change.

The sandbox matters because the files are edited by people who are not developers and
may be copied from anywhere; StrictUndefined makes a misspelt variable an error that
`config check` reports instead of an empty gap in a mail.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import jinja2
import msgspec
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from ..config import Config, MailConfig
from .kinds import ONE_SHOT, Kind

log = logging.getLogger(__name__)

BUILTIN_DIR = Path(__file__).resolve().parent / "templates"
LANGUAGES: tuple[str, ...] = ("de", "en")
Phase = Literal["alert", "escalate", "resolved"]
PHASES: tuple[Phase, ...] = ("alert", "escalate", "resolved")
KIND_BLOCKS = ("subject", "body", "todo", "resolved_subject", "resolved_body")
LAYOUTS = ("_subject.txt.j2", "_mail.txt.j2", "_mail.html.j2")


class Rendered(msgspec.Struct, frozen=True):
    subject: str
    text: str
    html: str


class TemplateProblem(Exception):
    pass


def _paragraphs(text: str) -> Markup:
    """Plain text -> simple HTML: blank lines part paragraphs, "- " lines become a list."""
    out: list[str] = []
    for para in [p for p in text.strip().split("\n\n") if p.strip()]:
        lines = [ln.rstrip() for ln in para.strip().splitlines()]
        if all(ln.lstrip().startswith("- ") for ln in lines):
            items = "".join(f"<li>{escape(ln.lstrip()[2:])}</li>" for ln in lines)
            out.append(f"<ul>{items}</ul>")
        else:
            out.append("<p>" + "<br>\n".join(str(escape(ln)) for ln in lines) + "</p>")
    return Markup("\n".join(out))  # noqa: S704 - every piece above is escaped


def make_env(templates_dir: str = "") -> SandboxedEnvironment:
    search = [str(BUILTIN_DIR)]
    if templates_dir:
        search.insert(0, templates_dir)
    env = SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["paragraphs"] = _paragraphs
    return env


def _block(tmpl: jinja2.Template, name: str, ctx: dict[str, Any]) -> str:
    if name not in tmpl.blocks:
        raise TemplateProblem(f"block `{name}` missing")
    return "".join(tmpl.blocks[name](tmpl.new_context(ctx))).strip()


class Renderer:
    """Renders one mail; falls back to the built-in files when an override is broken."""

    def __init__(self, mail: MailConfig, restaurant: str, timezone: str = "Europe/Berlin") -> None:
        self.mail = mail
        self.restaurant = restaurant
        self.tz = ZoneInfo(timezone)
        self.env = make_env(mail.templates_dir)
        self._builtin = make_env() if mail.templates_dir else self.env

    def context(self, kind: Kind, phase: Phase, detail: dict[str, Any], *, started_at: float, now: float,
                repeats: int = 0, repeats_since: float | None = None) -> dict[str, Any]:
        def hm(t: float) -> str:
            return dt.datetime.fromtimestamp(t, self.tz).strftime("%H:%M")

        return {
            "restaurant": self.restaurant,
            "kind": str(kind),
            "phase": phase,
            "detail": detail,
            "since": hm(started_at),
            "started": dt.datetime.fromtimestamp(started_at, self.tz).strftime("%d.%m.%Y %H:%M"),
            "now_time": hm(now),
            "duration_minutes": max(0, round((now - started_at) / 60)),
            "repeats": repeats,
            "repeats_since": hm(repeats_since) if repeats_since is not None else "",
        }

    def render(self, kind: Kind, phase: Phase, ctx: dict[str, Any], language: str | None = None) -> Rendered:
        lang = language or self.mail.language
        try:
            return render_with(self.env, lang, kind, phase, ctx)
        except (jinja2.TemplateError, TemplateProblem) as e:
            if self._builtin is self.env:
                raise
            # A restaurant's edit must never cost the owner the mail itself.
            log.error("mail template for %s/%s is broken (%s); using the built-in one", lang, kind, e)
            return render_with(self._builtin, lang, kind, phase, ctx)


def render_with(env: SandboxedEnvironment, lang: str, kind: Kind, phase: Phase,
                ctx: dict[str, Any]) -> Rendered:
    tmpl = env.get_template(f"{lang}/{kind}.j2")
    resolved = phase == "resolved"
    parts = {
        "subject": _block(tmpl, "resolved_subject" if resolved else "subject", ctx),
        "body": _block(tmpl, "resolved_body" if resolved else "body", ctx),
        "todo": "" if resolved else _block(tmpl, "todo", ctx),
    }
    full = {**ctx, **parts}
    subject = " ".join(env.get_template(f"{lang}/_subject.txt.j2").render(full).split())
    text = env.get_template(f"{lang}/_mail.txt.j2").render(full).strip() + "\n"
    html = env.get_template(f"{lang}/_mail.html.j2").render(full).strip() + "\n"
    return Rendered(subject=subject, text=text, html=html)


SAMPLE_DETAIL: dict[str, Any] = {
    "state": "paper_out", "error": "connection refused", "count": 3, "held": 2, "failed": 1,
    "oldest_minutes": 12, "free_mb": 150, "path": "/var/lib/wix-printer", "since": "2024-01-01T12:00:00",
    "message": "sample", "order_numbers": ["10001", "10002"], "host": "192.168.1.50",
}


def validate_templates(cfg: Config) -> list[str]:
    """Every problem of the mail templates (both languages) and of the mail timing keys.

    Renders each kind in each phase with sample values, so syntax errors, misspelt
    variables and missing blocks are found by `config check`, not by the owner's inbox.
    """
    problems: list[str] = []
    mail = cfg.mail
    if mail.templates_dir and not Path(mail.templates_dir).is_dir():
        problems.append(f"key `mail.templates_dir`: {mail.templates_dir} is not a folder")
        return problems
    from .hours import parse_hours

    try:
        parse_hours(mail.service_hours)
    except ValueError as e:
        problems.append(f"key `mail.service_hours`: {e}")
    env = make_env(mail.templates_dir)
    renderer = Renderer(mail, cfg.restaurant.name, cfg.restaurant.timezone)
    for lang in LANGUAGES:
        for name in LAYOUTS:
            try:
                env.get_template(f"{lang}/{name}")
            except jinja2.TemplateSyntaxError as e:
                problems.append(f"mail template {e.filename or name}: line {e.lineno}: {e.message}")
            except jinja2.TemplateNotFound:
                problems.append(f"mail template {lang}/{name}: missing")
        for kind in Kind:
            try:
                tmpl = env.get_template(f"{lang}/{kind}.j2")
            except jinja2.TemplateSyntaxError as e:
                problems.append(f"mail template {e.filename or kind}: line {e.lineno}: {e.message}")
                continue
            except jinja2.TemplateNotFound:
                problems.append(f"mail template {lang}/{kind}.j2: missing")
                continue
            missing = [b for b in KIND_BLOCKS if b not in tmpl.blocks]
            if missing:
                problems.append(f"mail template {tmpl.filename}: missing block(s) {', '.join(missing)}")
                continue
            phases: tuple[Phase, ...] = ("alert",) if kind in ONE_SHOT else PHASES
            for phase in phases:
                ctx = renderer.context(kind, phase, dict(SAMPLE_DETAIL), started_at=1_700_000_000.0,
                                       now=1_700_000_900.0, repeats=2, repeats_since=1_700_000_300.0)
                try:
                    r = render_with(env, lang, kind, phase, ctx)
                except jinja2.TemplateError as e:
                    where = getattr(e, "filename", None) or tmpl.filename
                    line = getattr(e, "lineno", None)
                    problems.append(f"mail template {where}: {f'line {line}: ' if line else ''}{phase}: {e}")
                    break
                if not r.subject:
                    problems.append(f"mail template {tmpl.filename}: {phase}: empty subject")
    return problems
