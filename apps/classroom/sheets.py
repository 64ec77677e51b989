"""Lab sheets: Markdown files in each lab's folder, `apps/<lab>/sheets/<name>.md`, each a sequence
of checkpoints between paragraphs of prose.

A sheet begins with a `# Title` line. A checkpoint is a fenced block whose info string is
`checkpoint` (passed by a run) or `question` (answered in a text box), of `key: value` lines:

    ```checkpoint
    id: lease-ttl-holds
    title: Find a TTL at which redis-lease-pause holds
    scenario: redis-lease-pause
    verdict: pass
    param ttl_ms: >= 8000
    ```

A run checkpoint names a scenario of the sheet's lab, the verdict to reach and constraints on the
run's clean params (`param NAME: OP VALUE`, OP one of = != >= <= > < or `in` with a comma list,
VALUE read by the param's own Param.clean). It is met by a finished run, not imported, of that
scenario whose verdict and params meet it; whose run it must be is the judge's business.

The prose is rendered with markdown-it-py and cleaned with nh3 against an allow-list; each block
becomes a placeholder the sheet page fills with the checkpoint's card.
"""

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nh3
from django.apps import apps as django_apps
from markdown_it import MarkdownIt

from apps.runs.registry import LABS

__all__ = [
    "Checkpoint",
    "Constraint",
    "Sheet",
    "SheetError",
    "all_sheets",
    "get_sheet",
    "parse_sheet",
    "sheets_of",
]

KINDS = ("checkpoint", "question")
ID_PATTERN = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
# A sheet's file name is the last part of its URL and of its slug.
STEM_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")
# Both go in CheckpointPass.checkpoint / Answer.checkpoint and the board's column header.
ID_MAX = 80
TITLE_MAX = 120
SLUG_MAX = 120  # CheckpointPass.sheet, Assignment.sheet
VERDICTS = ("pass", "fail")
# Longest operators first, so ">=" is not read as ">" followed by "=8000".
OPERATORS = (">=", "<=", "!=", "=", ">", "<", "in")
ORDERING = (">=", "<=", ">", "<")

# What sheet prose may contain once cleaned: Markdown's own output and a few harmless extras a
# writer may type as HTML (kbd, details). Everything else, scripts and event handlers included, goes.
ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "dl", "dt", "em",
    "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s", "strong",
    "sub", "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "td": {"style"},
    "th": {"style"},
    "ol": {"start"},
}
URL_SCHEMES = {"http", "https", "mailto"}


class SheetError(ValueError):
    """A mistake in a sheet file, with where it is: `file:line: what is wrong`."""

    def __init__(self, file, line, message):
        self.file, self.line, self.message = str(file), line, message
        super().__init__(f"{self.file}:{line}: {message}")


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Constraint:
    """`param NAME: OP VALUE` of a checkpoint; `value` is clean (a tuple for `in`)."""

    param: str
    op: str
    value: Any

    def holds(self, actual: Any) -> bool:
        try:
            if self.op == "=":
                return actual == self.value
            if self.op == "!=":
                return actual != self.value
            if self.op == "in":
                return actual in self.value
            if self.op == ">=":
                return actual >= self.value
            if self.op == "<=":
                return actual <= self.value
            if self.op == ">":
                return actual > self.value
            return actual < self.value
        except TypeError:  # a run recorded with a value of another type than the param has now
            return False

    def needs(self) -> str:
        """What it asks, as the card and the reasons say it: "ttl_ms >= 8000"."""
        if self.op == "in":
            return f"{self.param} one of {', '.join(_plain(v) for v in self.value)}"
        return f"{self.param} {self.op} {_plain(self.value)}"


@dataclass(frozen=True)
class Checkpoint:
    id: str
    title: str
    kind: str  # "run" or "question"
    scenario: str = ""
    verdict: str = ""
    constraints: tuple[Constraint, ...] = ()
    lab: str = ""
    sheet: str = ""  # the sheet's slug
    line: int = 0

    @property
    def is_question(self) -> bool:
        return self.kind == "question"

    @property
    def asks(self) -> str:
        """One sentence for the card: "Run redis-lease-pause with ttl_ms >= 8000 to verdict pass"."""
        if self.is_question:
            return "Answer in the box below; your instructor reads it."
        said = f"Run {self.scenario}"
        if self.constraints:
            said += " with " + ", ".join(c.needs() for c in self.constraints)
        return f"{said} and reach the verdict {self.verdict}."

    def judge(self, lab: str, scenario: str, params: dict | None, verdict: str) -> tuple[bool, str]:
        """Whether a run of lab/scenario with these clean params and verdict meets the checkpoint;
        when not, the reason says what is missing."""
        if self.is_question:
            return False, "a question is answered, not run"
        if lab != self.lab or scenario != self.scenario:
            return False, f"that was a run of {lab}/{scenario}, this needs {self.lab}/{self.scenario}"
        reasons = []
        if verdict != self.verdict:
            reasons.append(f"the verdict was {verdict or 'not reached'}, this needs {self.verdict}")
        params = params or {}
        for c in self.constraints:
            if c.param not in params:
                reasons.append(f"the run has no {c.param}, this needs {c.needs()}")
            elif not c.holds(params[c.param]):
                reasons.append(f"{c.param} is {_plain(params[c.param])}, this needs {c.needs()}")
        return not reasons, "; ".join(reasons)

    def judge_run(self, run) -> tuple[bool, str]:
        """judge() for a recorded Run, with what makes a run count at all: finished (done), not
        imported."""
        if run.is_imported:
            return False, "an imported run does not count"
        if run.status != "done":
            return False, f"the run is {run.status}, this needs a run that finished"
        return self.judge(run.lab, run.scenario, run.params, run.verdict)

    def met_by(self, run) -> bool:
        return self.judge_run(run)[0]


@dataclass(frozen=True)
class Sheet:
    slug: str  # "<lab>/<file name without .md>"
    lab: str
    title: str
    html: str  # the cleaned prose, with a placeholder element per checkpoint
    checkpoints: tuple[Checkpoint, ...]
    # The same page in order: (cleaned prose, None) and ("", checkpoint) pieces, for templates that
    # put a card where a placeholder is.
    parts: tuple[tuple[str, Checkpoint | None], ...] = field(default=(), repr=False)
    path: str = ""

    @property
    def name(self) -> str:
        return self.slug.split("/", 1)[1]

    def checkpoint(self, checkpoint_id: str) -> Checkpoint:
        for c in self.checkpoints:
            if c.id == checkpoint_id:
                return c
        raise LookupError(
            f"no checkpoint {checkpoint_id!r} in sheet {self.slug} "
            f"(checkpoints: {', '.join(c.id for c in self.checkpoints)})"
        )

    @property
    def runs(self) -> tuple[Checkpoint, ...]:
        return tuple(c for c in self.checkpoints if not c.is_question)

    @property
    def questions(self) -> tuple[Checkpoint, ...]:
        return tuple(c for c in self.checkpoints if c.is_question)


def _markdown() -> MarkdownIt:
    # HTML typed in a sheet is parsed, then nh3 keeps only the allow-list of it.
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _clean(html: str) -> str:
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
        # Markdown tables align their columns with style="text-align: ..."; no other style stays.
        filter_style_properties={"text-align"},
    )


def placeholder(checkpoint: Checkpoint) -> str:
    return f'<div class="sheet-checkpoint" id="checkpoint-{checkpoint.id}" data-checkpoint="{checkpoint.id}"></div>'


def _parse_block(file, lab, slug, kind, first_line, content) -> Checkpoint:
    """A checkpoint or question block; `first_line` is the file's line number of its first line."""
    scenario_of = LABS[lab].scenarios if lab in LABS else {}
    values, lines, constraints, seen_params = {}, {}, [], set()
    allowed = ("id", "title") if kind == "question" else ("id", "title", "scenario", "verdict")
    pending = []  # (line, name, op, text): params are read once the scenario is known
    for offset, raw in enumerate(content.splitlines()):
        line = first_line + offset
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition(":")
        key, value = key.strip(), value.strip()
        if not sep:
            raise SheetError(file, line, f"expected `key: value`, got {text!r}")
        if key.startswith("param ") and kind == "checkpoint":
            name = key[len("param ") :].strip()
            if name in seen_params:
                raise SheetError(file, line, f"param {name} is constrained twice")
            seen_params.add(name)
            op = next((o for o in OPERATORS if value.startswith(o)), None)
            if op is None:
                raise SheetError(
                    file, line, f"param {name}: {value!r} needs an operator first (one of {' '.join(OPERATORS)})"
                )
            operand = value[len(op) :].strip()
            if op == "in" and value[2:3] not in (" ", ""):
                raise SheetError(file, line, f"param {name}: bad operator in {value!r}")
            pending.append((line, name, op, operand))
            continue
        if key not in allowed:
            raise SheetError(file, line, f"unknown key {key!r} in a {kind} block (keys: {', '.join(allowed)})")
        if key in values:
            raise SheetError(file, line, f"{key} is given twice")
        if not value:
            raise SheetError(file, line, f"{key} is empty")
        values[key], lines[key] = value, line

    block_line = first_line - 1
    for key in allowed:
        if key not in values:
            raise SheetError(file, block_line, f"the {kind} block has no {key}")
    cid = values["id"]
    if len(cid) > ID_MAX or not ID_PATTERN.fullmatch(cid):
        raise SheetError(
            file, lines["id"], f"id {cid!r} must be lower-case letters, digits and dashes (at most {ID_MAX})"
        )
    if len(values["title"]) > TITLE_MAX:
        raise SheetError(file, lines["title"], f"the title is longer than {TITLE_MAX} characters")
    if kind == "question":
        return Checkpoint(cid, values["title"], "question", lab=lab, sheet=slug, line=block_line)

    scenario_name = values["scenario"]
    if scenario_name not in scenario_of:
        raise SheetError(
            file,
            lines["scenario"],
            f"unknown scenario {scenario_name!r} in lab {lab} (scenarios: {', '.join(scenario_of) or 'none'})",
        )
    if values["verdict"] not in VERDICTS:
        raise SheetError(file, lines["verdict"], f"verdict must be pass or fail, not {values['verdict']!r}")
    params = {p.name: p for p in scenario_of[scenario_name].params}
    for line, name, op, operand in pending:
        if name not in params:
            raise SheetError(
                file, line, f"unknown param {name!r} of {scenario_name} (params: {', '.join(params) or 'none'})"
            )
        param = params[name]
        if op in ORDERING and param.type not in ("int", "float"):
            raise SheetError(file, line, f"param {name} is a {param.type}: {op} needs a number")
        items = [item.strip() for item in operand.split(",")] if op == "in" else [operand]
        if not all(items):
            raise SheetError(file, line, f"param {name}: a value is missing after {op}")
        clean = []
        for item in items:
            try:
                clean.append(param.clean(item))
            except ValueError as exc:
                raise SheetError(file, line, f"param {name}: {item!r} {exc}") from None
        constraints.append(Constraint(name, op, tuple(clean) if op == "in" else clean[0]))
    return Checkpoint(
        cid,
        values["title"],
        "run",
        scenario=scenario_name,
        verdict=values["verdict"],
        constraints=tuple(constraints),
        lab=lab,
        sheet=slug,
        line=block_line,
    )


def parse_sheet(text: str, *, lab: str, slug: str, file: str = "<sheet>") -> Sheet:
    """A sheet from its Markdown, or SheetError naming the file and line of the first mistake."""
    md = _markdown()
    env = {}
    tokens = md.parse(text, env)
    lines = text.splitlines()
    first = next((i for i, raw in enumerate(lines) if raw.strip()), None)
    if first is None or not re.match(r"# \S", lines[first]) or tokens[0].tag != "h1":
        raise SheetError(file, (first or 0) + 1, "a sheet begins with a `# Title` line")
    # The title is the page's header, not part of its prose: drop its three tokens.
    title = tokens[1].content.strip()
    if len(title) > TITLE_MAX:
        raise SheetError(file, first + 1, f"the title is longer than {TITLE_MAX} characters")
    tokens = tokens[3:]

    parts, checkpoints, seen, run = [], [], {}, []

    def flush():
        if run:
            parts.append((_clean(md.renderer.render(run, md.options, env)), None))
            run.clear()

    for token in tokens:
        info = token.info.strip().split(maxsplit=1)[0] if token.type == "fence" and token.info.strip() else ""
        if info not in KINDS:
            run.append(token)
            continue
        if token.map is None:  # fences inside lists or quotes still carry their lines; be safe
            raise SheetError(file, 0, f"a {info} block must stand at the top level of the sheet")
        if token.level != 0:
            raise SheetError(file, token.map[0] + 1, f"a {info} block must stand at the top level of the sheet")
        checkpoint = _parse_block(file, lab, slug, info, token.map[0] + 2, token.content)
        if checkpoint.id in seen:
            raise SheetError(
                file, checkpoint.line, f"duplicate id {checkpoint.id!r} (first on line {seen[checkpoint.id]})"
            )
        seen[checkpoint.id] = checkpoint.line
        flush()
        parts.append(("", checkpoint))
        checkpoints.append(checkpoint)
    flush()
    if not checkpoints:
        raise SheetError(file, first + 1, "the sheet has no checkpoint or question block")
    html = "".join(placeholder(c) if c else prose for prose, c in parts)
    return Sheet(slug, lab, title, html, tuple(checkpoints), tuple(parts), str(file))


def sheets_of(lab: str, folder: Path) -> dict[str, Sheet]:
    """The sheets in `folder` (the lab's `sheets/`), by slug, in file-name order."""
    found = {}
    for path in sorted(Path(folder).glob("*.md")):
        if not STEM_PATTERN.fullmatch(path.stem):
            raise SheetError(path, 0, "a sheet's file name is lower-case letters, digits, - and _")
        slug = f"{lab}/{path.stem}"
        if len(slug) > SLUG_MAX:
            raise SheetError(path, 0, f"the sheet's slug {slug} is longer than {SLUG_MAX} characters")
        found[slug] = parse_sheet(path.read_text(encoding="utf-8"), lab=lab, slug=slug, file=path)
    return found


def lab_folder(lab: str) -> Path | None:
    """The lab's app folder: a lab's name is its app's label (a lab registered without an app of
    its own, as tests do, has no sheets)."""
    try:
        return Path(django_apps.get_app_config(lab).path)
    except LookupError:
        return None


@functools.cache
def all_sheets() -> dict[str, Sheet]:
    """Every registered lab's sheets, by slug ("<lab>/<stem>"), in the registry's lab order. Read
    once per process: sheets ship with the code."""
    found = {}
    for lab in LABS:
        folder = lab_folder(lab)
        if folder is not None and (folder / "sheets").is_dir():
            found.update(sheets_of(lab, folder / "sheets"))
    return found


def get_sheet(slug: str) -> Sheet:
    """The sheet, or LookupError saying which exist."""
    sheets = all_sheets()
    if slug not in sheets:
        raise LookupError(f"unknown sheet {slug!r} (sheets: {', '.join(sheets) or 'none'})")
    return sheets[slug]
