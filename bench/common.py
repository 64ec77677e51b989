"""What every bench script does besides measuring: set Django up, describe the machine, write
bench/results/<name>.json and put the script's markdown table between its markers in
bench/README.md. Each script keeps its own measuring code and its own JSON keys."""

import json
import os
import platform
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
README = ROOT / "bench" / "README.md"
SETTINGS = "labsite.settings.dev"


def setup_django(settings: str = SETTINGS, migrate: bool = False) -> None:
    """Django set up from the environment's URLs; `migrate` for a script that creates runs on a
    control database that may be fresh."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def logger(name: str) -> Callable[[str], None]:
    """log(msg) to stderr, so that stdout holds only the table."""

    def log(msg: str) -> None:
        print(f"[{name} {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    return log


def exit_on_sigterm() -> None:
    """A SIGTERM ends the script through its finally blocks, so what it started (nodes, workers,
    servers) stops too."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def load() -> list[float]:
    """The load average (1, 5, 15 min): on a shared machine, who else was busy."""
    return [round(x, 2) for x in os.getloadavg()]


def machine(**extra: Any) -> dict[str, Any]:
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()} | extra


def ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    """a / b, or None when either is missing or zero (a scenario that did not run)."""
    return round(a / b, digits) if a and b else None


def median_of(items: Sequence[dict], key: str) -> dict:
    """The middle one of repeated measurements, by `key` (the upper middle of an even count)."""
    return sorted(items, key=lambda item: item[key])[len(items) // 2]


def count_for(op: Callable[[], Any], seconds: float) -> tuple[int, float]:
    """Calls op() in a loop for about `seconds`: (calls, elapsed seconds)."""
    n, began = 0, time.perf_counter()
    end = began + seconds
    while True:
        op()
        n += 1
        now = time.perf_counter()
        if now >= end:
            return n, now - began


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin (written by bench/{name}.py) -->", f"<!-- {name}:end -->"


def update_readme(name: str, text: str) -> None:
    """Replaces what stands between the script's markers in bench/README.md."""
    begin, end = markers(name)
    readme = README.read_text()
    if begin not in readme or end not in readme:
        raise ValueError(f"{README.relative_to(ROOT)} has no {begin} ... {end} section")
    head, rest = readme.split(begin, 1)
    README.write_text(f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}")


def publish(name: str, report: dict, table: Callable[[dict], str]) -> Path:
    """Writes bench/results/<name>.json, prints the report's markdown table and puts it in
    bench/README.md; returns the results file."""
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    text = table(report)
    print(text)
    update_readme(name, text)
    return path
