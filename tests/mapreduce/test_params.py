"""Bad MapReduce parameters are refused field by field, before anything runs."""

import pytest

from apps.mapreduce import uploads
from apps.runs.registry import get_scenario

pytestmark = pytest.mark.django_db


def errors(name, **params):
    return get_scenario("mapreduce", name).validate(params)[1]


def test_it_refuses_zero_maps_and_zero_reduces():
    assert errors("wordcount", maps=0, reduces=0) == {"maps": ["must be at least 1"], "reduces": ["must be at least 1"]}


def test_it_refuses_a_bad_or_long_grep_pattern():
    (message,) = errors("grep", pattern="(unclosed")["pattern"]
    assert message == "not a regular expression RE2 accepts: missing ): (unclosed"
    assert errors("grep", pattern="a" * 201) == {"pattern": ["at most 200 characters"]}
    assert errors("grep", pattern="") == {"pattern": ["give a regular expression to search for"]}
    assert errors("grep", pattern=r"\bclass\b") == {}


@pytest.mark.parametrize(
    "pattern, reason",
    [(r"(\w+) \1", "invalid escape sequence: \\1"), (r"self(?=\.)", "invalid perl operator: (?=")],
)
def test_it_refuses_with_a_field_error_a_pattern_that_only_a_backtracking_engine_runs(pattern, reason):
    # Backreferences and lookaround have no linear-time algorithm: RE2 refuses them.
    assert errors("grep", pattern=pattern) == {"pattern": [f"not a regular expression RE2 accepts: {reason}"]}


def test_it_wants_an_upload_token_when_the_input_is_an_upload():
    assert errors("wordcount", input="upload") == {
        "upload": ["required when input is upload: upload a text file and give its token"]
    }
    assert "input" in errors("wordcount", input="/etc/passwd")


def test_it_refuses_someone_elses_upload(settings, tmp_path, student_user, other_student):
    settings.DISTLAB_UPLOAD_DIR = tmp_path
    token = uploads.save(student_user, "notes.txt", b"to be or not to be\n")["token"]
    scenario = get_scenario("mapreduce", "wordcount")
    clean, _ = scenario.validate({"input": "upload", "upload": token})
    assert scenario.owner_check(student_user, clean) == {}
    assert scenario.owner_check(None, clean) == {}
    assert scenario.owner_check(other_student, clean) == {"upload": ["this upload belongs to another user"]}
    clean["upload"] = "cli-" + "0" * 64
    (message,) = scenario.owner_check(student_user, clean)["upload"]
    assert message.startswith("unknown upload")


def test_the_api_answers_400_with_the_field(client, student_user):
    client.force_login(student_user)
    response = client.post(
        "/api/runs/",
        {"lab": "mapreduce", "scenario": "grep", "params": {"pattern": "[a-"}},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "pattern" in str(response.json())
