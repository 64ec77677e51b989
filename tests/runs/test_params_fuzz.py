"""Every JSON type and extreme, thrown at every parameter of every scenario of every registered lab
through POST /api/runs/: each answer is 201 with a clean value stored, or 400 with a message for the
field, never a 500."""

import json
import math

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from apps.runs.models import Run
from apps.runs.registry import LABS, NUMBER_LIMIT, TEXT_MAX

pytestmark = pytest.mark.django_db

NUMBERS, TEXTS, BOOL = {"int", "float"}, {"str", "choice"}, {"bool"}
EVERY_TYPE = NUMBERS | TEXTS | BOOL

# Raw JSON text (so 1e999 and 10**400 arrive as written) -> the parameter types that must refuse it
# whatever their bounds.
VALUES = {
    "null": EVERY_TYPE,
    "true": NUMBERS | TEXTS,
    "false": NUMBERS | TEXTS,
    "0": TEXTS | BOOL,
    "1": TEXTS | BOOL,
    "-1": TEXTS | BOOL,
    "-0.0": TEXTS | BOOL,
    "0.5": {"int"} | TEXTS | BOOL,
    "2147483648": TEXTS | BOOL,
    str(NUMBER_LIMIT + 1): EVERY_TYPE,
    str(-NUMBER_LIMIT - 1): EVERY_TYPE,
    "1" + "0" * 400: EVERY_TYPE,
    "1e308": EVERY_TYPE,
    "1e999": EVERY_TYPE,  # infinity once parsed
    "-1e999": EVERY_TYPE,
    "1e-999": TEXTS | BOOL,  # 0.0 once parsed, which an integer parameter takes as 0
    # No choice list holds any of these strings.
    '""': EVERY_TYPE - {"str"},
    '"abc"': EVERY_TYPE - {"str"},
    '" 7 "': {"bool", "choice"},
    '"1e999"': EVERY_TYPE - {"str"},
    '"nan"': EVERY_TYPE - {"str"},
    '"inf"': EVERY_TYPE - {"str"},
    '"-Infinity"': EVERY_TYPE - {"str"},
    '"1_000"': EVERY_TYPE - {"str"},
    '"0x10"': EVERY_TYPE - {"str"},
    '"true"': NUMBERS | {"choice"},
    '"\\ud800"': EVERY_TYPE,  # a lone surrogate: valid JSON, no UTF-8 form
    '"\\u0000"': EVERY_TYPE - {"str"},
    json.dumps("x" * (TEXT_MAX + 1)): EVERY_TYPE,
    "[]": EVERY_TYPE,
    "[1]": EVERY_TYPE,
    '["a", ["b"]]': EVERY_TYPE,
    "{}": EVERY_TYPE,
    '{"value": 1}': EVERY_TYPE,
    '{"a": {"b": {"c": []}}}': EVERY_TYPE,
}
# Strict JSON has no NaN or Infinity: the parser refuses the whole body.
NOT_JSON = ("NaN", "Infinity", "-Infinity")


def own_values(param):
    """The parameter's default, choices and bounds, and just past its bounds (which it must refuse)."""
    values = {json.dumps(param.default): set()}
    for choice in param.choices:
        values[json.dumps(choice)] = set()
    step = 1 if param.type == "int" else 0.001
    if param.min is not None:
        values[json.dumps(param.min)] = set()
        values[json.dumps(param.min - step)] = {param.type}
    if param.max is not None:
        values[json.dumps(param.max)] = set()
        values[json.dumps(param.max + step)] = {param.type}
    return values


def messages_of(errors):
    """Every message in an error body, however nested."""
    if isinstance(errors, dict):
        return [m for value in errors.values() for m in messages_of(value)]
    if isinstance(errors, list):
        return [m for value in errors for m in messages_of(value)]
    return [errors]


def assert_clean(param, value):
    """What a run got is what its engine can use."""
    if param.type == "int":
        assert type(value) is int and -NUMBER_LIMIT <= value <= NUMBER_LIMIT
    elif param.type == "float":
        assert type(value) is float and math.isfinite(value)
    elif param.type == "bool":
        assert type(value) is bool
    else:
        assert type(value) is str and len(value) <= TEXT_MAX
        assert param.type != "choice" or value in param.choices
    if param.type in NUMBERS:
        assert param.min is None or value >= param.min
        assert param.max is None or value <= param.max


SCENARIOS = [(lab.name, sc) for lab in LABS.values() for sc in lab.scenarios.values()]


@pytest.mark.parametrize(("lab", "scenario"), SCENARIOS, ids=[f"{lab}/{sc.name}" for lab, sc in SCENARIOS])
def test_no_value_of_any_parameter_makes_the_server_fail(lab, scenario, student_user, settings):
    settings.DISTLAB_RUN_QUOTA = 100_000  # every accepted value starts a run; none of them ends here
    # A script's token: each request authenticates with one query, where a session takes two.
    token, _ = Token.objects.get_or_create(user=student_user)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    for param in scenario.params:
        for raw, refused_by in {**VALUES, **own_values(param)}.items():
            body = f'{{"lab": {json.dumps(lab)}, "scenario": {json.dumps(scenario.name)}, "params": {{"{param.name}": {raw}}}}}'
            response = client.post("/api/runs/", body, content_type="application/json")
            where = f"{param.name}={raw[:60]}"
            assert response.status_code in (201, 400), f"{where}: {response.status_code} {response.content[:300]!r}"
            answer = response.json()
            if response.status_code == 201:
                assert param.type not in refused_by, f"{where} was accepted"
                assert_clean(param, Run.objects.get(pk=answer["id"]).params[param.name])
                continue
            messages = messages_of(answer)
            assert messages and all(isinstance(m, str) and m for m in messages), f"{where}: {answer}"
            if param.type in refused_by:
                assert param.name in answer.get("params", {}), f"{where}: refused without a word on it: {answer}"
        for raw in NOT_JSON:
            body = f'{{"lab": "{lab}", "scenario": "{scenario.name}", "params": {{"{param.name}": {raw}}}}}'
            response = client.post("/api/runs/", body, content_type="application/json")
            assert response.status_code == 400 and "JSON" in response.json()["detail"], raw
