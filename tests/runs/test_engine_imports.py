"""Engines import the engine API and nothing else of the project: no Django, no Celery, no other
app (DESIGN.md, "The run context")."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
ALLOWED = {"apps.runs.engine_api"}
FORBIDDEN_TOP = {"django", "celery", "channels", "rest_framework", "kombu"}


def imports_of(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def test_engines_import_only_the_engine_api_of_the_project():
    engines = sorted(ROOT.glob("apps/*/engine/**/*.py"))
    assert engines, "every lab has an engine package"
    wrong = []
    for path in engines:
        for line, module in imports_of(path):
            top = module.split(".")[0]
            if (top == "apps" and module not in ALLOWED) or top in FORBIDDEN_TOP:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert wrong == []


def test_checkers_live_in_checkers_modules_not_in_engines():
    inside = []
    for path in sorted(ROOT.glob("apps/*/engine/**/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name) and node.id == "Check":
                inside.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert inside == [], "an engine judges a run: its checker belongs in the lab's checkers.py"
