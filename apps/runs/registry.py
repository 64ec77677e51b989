"""Labs and their scenarios: names, explanations, parameter schemas, invariants, expected verdicts.

Plain Python. Each lab app declares its Lab in scenarios.py and calls `register(lab)`; the runs app
imports every scenarios.py at start-up.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .engine_api import Check

__all__ = [
    "Assets",
    "Caption",
    "Check",
    "Fault",
    "Invariant",
    "Lab",
    "Param",
    "Scenario",
    "counted",
    "get_scenario",
    "register",
    "verdict_of",
]

# Bounds of a number parameter that declares none: what a signed 64-bit column or driver
# argument holds, so whatever the form accepts an engine can pass on.
NUMBER_LIMIT = 2**63 - 1
# Parameters are short settings, not documents: a longer text is refused rather than stored.
TEXT_MAX = 1000
# Numbers written as text, as the command line's --set K=V sends them; float() alone would also
# take "nan", "inf" and "1_0".
_INTEGER_TEXT = re.compile(r"[+-]?\d{1,30}")
_NUMBER_TEXT = re.compile(r"[+-]?(\d{1,30}(\.\d{0,30})?|\.\d{1,30})([eE][+-]?\d{1,5})?")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
# Steps per second of the lab form's default pace: the pace a scenario's duration is told at.
PAGE_SPEED = 2


def _plain(number: float) -> str:
    """A bound as a person writes it: 1000000, not 1e+06; 0.5 stays 0.5."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


@dataclass(frozen=True)
class Param:
    """A scenario's parameter. clean() takes what a JSON body, a form or the command line sends."""

    name: str
    type: str  # int, float, bool, str or choice
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple = ()

    # The parsing is written here rather than left to DRF's fields: the registry is plain Python
    # that the command line shares, and the messages must read the same in the form, the API and
    # the CLI. tests/runs/test_params_fuzz.py throws every JSON type and extreme at every parameter.
    def clean(self, value: Any) -> Any:
        """The value as the engine gets it, or ValueError with the message shown beside the field."""
        if self.type == "bool":
            return self._clean_bool(value)
        if self.type in ("int", "float"):
            return self._clean_number(value)
        return self._clean_text(value)

    def _clean_bool(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError("must be true or false")

    def _clean_number(self, value: Any) -> int | float:
        wrong = ValueError("must be an integer" if self.type == "int" else "must be a number")
        if isinstance(value, str):
            text = value.strip()
            if not (_INTEGER_TEXT if self.type == "int" else _NUMBER_TEXT).fullmatch(text):
                raise wrong
            value = int(text) if self.type == "int" else float(text)
        # bool is an int in Python, but `true` for a count is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:  # NaN
            raise wrong
        low = self.min if self.min is not None else -NUMBER_LIMIT
        high = self.max if self.max is not None else NUMBER_LIMIT
        # Compared before any conversion: a huge int or 1e999 (infinity once parsed) is simply too
        # large, where int() or float() of it would raise OverflowError.
        if value < low:
            raise ValueError(f"must be at least {_plain(low)}")
        if value > high:
            raise ValueError(f"must be at most {_plain(high)}")
        if self.type == "float":
            return float(value)
        if isinstance(value, float) and not value.is_integer():
            raise wrong
        return int(value)

    def _clean_text(self, value: Any) -> str:
        if self.type == "choice" and (not isinstance(value, str) or value not in self.choices):
            raise ValueError(f"must be one of {', '.join(self.choices)}")
        if not isinstance(value, str):
            raise ValueError("must be text")
        if len(value) > TEXT_MAX:
            raise ValueError(f"must be at most {TEXT_MAX} characters")
        try:
            # A lone surrogate (JSON allows "\ud800") has no UTF-8 form: no database could store it.
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be text without unpaired surrogates") from None
        return value

    def schema(self):
        s = {"type": self.type, "default": self.default, "help": self.help}
        if self.min is not None:
            s["min"] = self.min
        if self.max is not None:
            s["max"] = self.max
        if self.choices:
            s["choices"] = list(self.choices)
        return s


# A run's seed is no scenario's parameter, but it is typed in the same form: cleaned the same
# way, its errors read the same.
SEED = Param("seed", "int", None, "the same seed replays the same choices", min=0, max=2**62)


@dataclass(frozen=True)
class Invariant:
    """A property of a run, judged from the history and the real final data: check(ctx, result)."""

    name: str
    description: str
    check: Callable


@dataclass(frozen=True)
class Fault:
    """A fault an instructor may inject during a run of a scenario; `options` go with it (e.g. the
    milliseconds of a latency fault)."""

    kind: str
    targets: tuple
    help: str = ""
    options: dict = field(default_factory=dict)
    # Targets numbered by a parameter, e.g. ("c", "clients"): a run with clients=3 has c1, c2, c3.
    # `targets` then lists every target a run may have.
    numbered: tuple | None = None

    def targets_for(self, params):
        """The targets of a run with these (clean) parameters."""
        if self.numbered is None or params is None:
            return tuple(self.targets)
        prefix, param = self.numbered
        return tuple(f"{prefix}{i}" for i in range(1, int(params.get(param, 0)) + 1))

    def describe(self, params=None):
        if self.numbered is not None and params is None:
            prefix, param = self.numbered
            # Said for people: "any client, c1 to cN (N = clients)".
            noun = param[:-1] if param.endswith("s") else param
            where = f"any {noun}, {prefix}1 to {prefix}N (N = {param})"
        else:
            where = ", ".join(self.targets_for(params))
        return {"kind": self.kind, "targets": list(self.targets_for(params)), "where": where, "help": self.help}


@dataclass(frozen=True)
class Caption:
    """A line of a scenario's narration, shown beside the animation once the run reaches an event
    it matches: of that `kind`, whose label contains `label`, from `actor`, whose data holds every
    item of `data` (each empty one matches anything). The run page matches the same way
    (static/runs/js/narration.js); the text stays until a later caption's event is reached."""

    text: str
    kind: str
    label: str = ""
    actor: str = ""
    data: dict = field(default_factory=dict)

    def matches(self, event: dict) -> bool:
        if event.get("kind") != self.kind or self.label not in (event.get("label") or ""):
            return False
        if self.actor and event.get("actor") != self.actor:
            return False
        data = event.get("data") or {}
        return all(data.get(key) == value for key, value in self.data.items())

    def describe(self):
        return {"text": self.text, "kind": self.kind, "label": self.label, "actor": self.actor, "data": self.data}


@dataclass
class Scenario:
    name: str
    title: str
    summary: str
    engine: Callable
    params: tuple = ()
    invariants: tuple = ()
    expected: str = "pass"
    faults: tuple = ()
    # Dedicated nodes the run needs, started for it by the node supervisor, e.g. {"mariadb": 3};
    # None runs on the shared nodes.
    cluster: dict | None = None
    lab: str = ""
    # Checks across parameters, after each one is clean: clean params -> {field: [message]}.
    cross_check: Callable | None = None
    # Checks that need the user starting the run (None from the CLI): (owner, clean) -> {field: [message]}.
    owner_check: Callable | None = None
    # How long a run takes at the page's default pace (PAGE_SPEED), in seconds, as measured: a number
    # for the default parameters, or a function of the clean parameters when one of them sets the
    # length (rounds, transfers). Told on the lab page and the run page; None: not measured.
    duration_s: float | Callable[[dict], float] | None = None
    # Narration: what to watch, told before the run starts, and captions keyed to its events.
    watch: str = ""
    captions: tuple[Caption, ...] = ()

    def duration(self, params: dict | None = None) -> int | None:
        """Seconds a run with these clean parameters (the defaults when None) takes at PAGE_SPEED."""
        if self.duration_s is None:
            return None
        if callable(self.duration_s):
            if params is None:
                params = {p.name: p.default for p in self.params}
            try:
                seconds = self.duration_s(params)
            except (KeyError, TypeError, ValueError):
                return None  # a run recorded with parameters this scenario no longer has
        else:
            seconds = self.duration_s
        return max(1, round(seconds))

    def duration_text(self, params: dict | None = None) -> str:
        """The duration as the pages tell it, "about 20 s at 2 steps/s"; "" when not measured."""
        seconds = self.duration(params)
        if seconds is None:
            return ""
        told = f"{seconds} s" if seconds < 90 else f"{round(seconds / 60)} min"
        return f"about {told} at {PAGE_SPEED} steps/s"

    def validate(self, raw):
        """Returns (clean params, errors by field); unknown keys are errors, missing ones get defaults."""
        raw = raw or {}
        errors = {}
        if not isinstance(raw, dict):
            return {}, {"params": ["must be an object of parameter values"]}
        known = {p.name: p for p in self.params}
        for key in raw:
            if key not in known:
                # Named as sent, but in a form any answer can carry: a lone surrogate in a JSON key
                # ("\ud800") has no UTF-8 form.
                name = str(key).encode("utf-8", "backslashreplace").decode()
                errors[name] = [f"unknown parameter (known: {', '.join(known) or 'none'})"]
        clean = {}
        for p in self.params:
            if p.name in raw:
                try:
                    clean[p.name] = p.clean(raw[p.name])
                except ValueError as exc:
                    errors[p.name] = [str(exc)]
            else:
                clean[p.name] = p.default
        if not errors and self.cross_check is not None:
            errors = self.cross_check(clean) or {}
        return clean, errors

    def fault(self, kind, target, params=None):
        """The fault `kind` on `target`, if this scenario has it (for a run with `params`)."""
        for f in self.faults:
            if f.kind == kind and target in f.targets_for(params):
                return f
        return None

    def faults_for(self, params=None):
        return [f.describe(params) for f in self.faults]

    def describe(self):
        return {
            "name": self.name,
            "title": self.title,
            "summary": self.summary,
            "expected": self.expected,
            "params": {p.name: p.schema() for p in self.params},
            "invariants": [{"name": i.name, "description": i.description} for i in self.invariants],
            "faults": self.faults_for(),
            "cluster": self.cluster,
            "duration_s": self.duration(),
            "duration": self.duration_text(),
            "watch": self.watch,
            "captions": [c.describe() for c in self.captions],
        }


@dataclass(frozen=True)
class Assets:
    """Files under static/ that a lab adds to a page, as a form's Media does: stylesheets, and ES
    modules loaded before the page's own script (a run-page module registers its panels)."""

    css: tuple[str, ...] = ()
    js: tuple[str, ...] = ()


@dataclass
class Lab:
    """A lab, as a plug-in: its scenarios and what it adds to the platform's pages. The platform
    renders what labs declare here and never names a lab."""

    name: str
    title: str
    explanation: str
    scenarios: dict = field(default_factory=dict)
    run_page: Assets = Assets()
    lab_page: Assets = Assets()
    # Templates rendered on the lab page above the scenarios, with `lab`, `lab_info` and what
    # `lab_context()` returns in their context (a compare form, say).
    lab_partials: tuple[str, ...] = ()
    lab_context: Callable[[], dict] | None = None
    # Templates rendered after a parameter's field in every form that has it: {param: template}.
    field_partials: dict[str, str] = field(default_factory=dict)
    # A module whose `urlpatterns` the site includes at its root (the lab's own API, say).
    urls: str | None = None

    def __post_init__(self):
        if isinstance(self.scenarios, (list, tuple)):
            self.scenarios = {s.name: s for s in self.scenarios}
        for s in self.scenarios.values():
            s.lab = self.name

    def describe(self):
        return {
            "name": self.name,
            "title": self.title,
            "explanation": self.explanation,
            "scenarios": [s.describe() for s in self.scenarios.values()],
        }


LABS = {}


def register(lab):
    LABS[lab.name] = lab
    return lab


def get_scenario(lab, scenario):
    """The scenario, or LookupError with a message that says what exists."""
    if lab not in LABS:
        raise LookupError(f"unknown lab {lab!r} (labs: {', '.join(sorted(LABS))})")
    scenarios = LABS[lab].scenarios
    if scenario not in scenarios:
        raise LookupError(f"unknown scenario {scenario!r} in lab {lab!r} (scenarios: {', '.join(scenarios)})")
    return scenarios[scenario]


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun, "1 probe" or "7 probes": for the short `summary` a checker may put in
    its evidence, which the run page's verdict tells beside the faults a user injected."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def verdict_of(checks):
    """pass when every invariant held, fail when any broke, unknown otherwise."""
    held = [c["held"] for c in checks]
    if any(h is False for h in held):
        return "fail"
    if held and all(h is True for h in held):
        return "pass"
    return "unknown"
