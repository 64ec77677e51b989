"""Labs and their scenarios: names, explanations, parameter schemas, invariants, expected verdicts.

Plain Python. Each lab app declares its Lab in scenarios.py and calls `register(lab)`; the runs app
imports every scenarios.py at start-up.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .engine_api import Check

__all__ = ["Check", "Fault", "Invariant", "Lab", "Param", "Scenario", "get_scenario", "register", "verdict_of"]

_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "choice": str}


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any
    help: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple = ()

    def clean(self, value):
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ValueError("must be true or false")
        if self.type in ("int", "float"):
            if isinstance(value, bool):
                raise ValueError(f"must be a{'n integer' if self.type == 'int' else ' number'}")
            try:
                number = _TYPES[self.type](value)
                if self.type == "int" and isinstance(value, float) and value != int(value):
                    raise ValueError
            except (TypeError, ValueError):
                raise ValueError(f"must be a{'n integer' if self.type == 'int' else ' number'}") from None
            if self.min is not None and number < self.min:
                raise ValueError(f"must be at least {self.min:g}")
            if self.max is not None and number > self.max:
                raise ValueError(f"must be at most {self.max:g}")
            return number
        if not isinstance(value, str):
            raise ValueError("must be a string")
        if self.type == "choice" and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(self.choices)}")
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
            where = f"{prefix}1 … {prefix}<{param}>"
        else:
            where = ", ".join(self.targets_for(params))
        return {"kind": self.kind, "targets": list(self.targets_for(params)), "where": where, "help": self.help}


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

    def validate(self, raw):
        """Returns (clean params, errors by field); unknown keys are errors, missing ones get defaults."""
        raw = raw or {}
        errors = {}
        if not isinstance(raw, dict):
            return {}, {"params": ["must be an object of parameter values"]}
        known = {p.name: p for p in self.params}
        for key in raw:
            if key not in known:
                errors[key] = [f"unknown parameter (known: {', '.join(known) or 'none'})"]
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
        }


@dataclass
class Lab:
    name: str
    title: str
    explanation: str
    scenarios: dict = field(default_factory=dict)

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


def verdict_of(checks):
    """pass when every invariant held, fail when any broke, unknown otherwise."""
    held = [c["held"] for c in checks]
    if any(h is False for h in held):
        return "fail"
    if held and all(h is True for h in held):
        return "pass"
    return "unknown"
