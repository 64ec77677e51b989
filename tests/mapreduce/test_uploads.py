"""Uploaded MapReduce input: the storage module, and POST/GET /api/mapreduce/uploads/."""

import io

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from apps.mapreduce import uploads

TEXT = "the quick brown fox\njumps over the lazy dog\nthe end\n"
URL = "/api/mapreduce/uploads/"


@pytest.fixture(autouse=True)
def _own_data_folder(settings, tmp_path):
    settings.DISTLAB_UPLOAD_DIR = tmp_path / "uploads"


def as_file(data, name="words.txt"):
    f = io.BytesIO(data)
    f.name = name
    return f


# The module


def test_it_saves_a_text_file_and_reads_it_back(student_user):
    info = uploads.save(student_user, "words.txt", TEXT.encode())
    assert info == {"token": info["token"], "name": "words.txt", "bytes": len(TEXT), "lines": 3}
    assert uploads.TOKEN_RE.match(info["token"])
    assert uploads.read_text(info["token"]) == ("words.txt", TEXT)


def test_it_names_the_stored_file_by_its_sha256_in_the_owners_folder(student_user, tmp_path):
    import hashlib

    info = uploads.save(student_user, "words.txt", TEXT.encode())
    digest = hashlib.sha256(TEXT.encode()).hexdigest()
    assert (tmp_path / "uploads" / "mapreduce" / str(student_user.pk) / f"{digest}.txt").read_text() == TEXT
    assert info["token"].endswith(digest)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (b"text\x00with a NUL", "binary"),
        (b"\xff\xfe\x00\x01caf\xe9", "binary"),
        ("café latin-1".encode("latin-1"), "not UTF-8 text"),
    ],
)
def test_it_refuses_empty_and_binary_files_with_a_one_line_message(student_user, data, message):
    with pytest.raises(ValueError, match=message) as caught:
        uploads.save(student_user, "x.txt", data)
    assert "\n" not in str(caught.value)


def test_it_refuses_a_file_over_the_limit_and_says_the_limit(student_user, settings):
    settings.DISTLAB_UPLOAD_LIMIT = 1024
    with pytest.raises(ValueError, match=r"the limit is 1 KiB"):
        uploads.save(student_user, "big.txt", b"a" * 1025)
    assert uploads.save(student_user, "fits.txt", b"a" * 1024)["bytes"] == 1024


def test_the_default_limit_is_20_mb(settings):
    del settings.DISTLAB_UPLOAD_LIMIT
    assert uploads.limit() == 20 * 1024 * 1024


def test_read_text_of_a_missing_or_malformed_token_says_unknown_upload(student_user):
    info = uploads.save(student_user, "words.txt", TEXT.encode())
    missing = info["token"][:-1] + ("0" if info["token"][-1] != "0" else "1")
    for token in (missing, "../../etc/passwd", f"{student_user.pk}-../{'a' * 61}", "", None):
        with pytest.raises(ValueError, match="^unknown upload"):
            uploads.read_text(token)


def test_owned_by_knows_whose_upload_it_is(student_user, other_student):
    mine = uploads.save(student_user, "words.txt", TEXT.encode())["token"]
    assert uploads.owned_by(mine, student_user)
    assert not uploads.owned_by(mine, other_student)
    assert uploads.owned_by(mine, None)  # the command line may use any existing upload
    assert not uploads.owned_by("cli-" + "0" * 64, None)
    assert not uploads.owned_by("../x", None)
    cli = uploads.save(None, "cli.txt", b"from the shell\n")["token"]
    assert uploads.owned_by(cli, None) and not uploads.owned_by(cli, student_user)


def test_each_user_keeps_their_own_copy_of_the_same_content(student_user, other_student):
    a = uploads.save(student_user, "a.txt", TEXT.encode())["token"]
    b = uploads.save(other_student, "b.txt", TEXT.encode())["token"]
    assert a != b
    assert uploads.read_text(a)[0] == "a.txt" and uploads.read_text(b)[0] == "b.txt"


def test_past_the_quota_the_oldest_upload_is_dropped(student_user, other_student):
    bob = uploads.save(other_student, "bob.txt", b"bob\n")["token"]
    tokens = [
        uploads.save(student_user, f"f{i}.txt", f"file {i}\n".encode())["token"] for i in range(uploads.QUOTA + 2)
    ]
    kept = [u["token"] for u in uploads.list_for(student_user)]
    assert len(kept) == uploads.QUOTA
    assert kept[0] == tokens[-1]
    for dropped in tokens[:2]:
        with pytest.raises(ValueError, match="^unknown upload"):
            uploads.read_text(dropped)
    assert uploads.owned_by(bob, other_student)


def test_file_names_are_kept_as_names_only(student_user):
    assert uploads.save(student_user, "../../etc/passwd", b"x\n")["name"] == "passwd"
    assert uploads.save(student_user, "C:\\docs\\notes.txt", b"y\n")["name"] == "notes.txt"


# The endpoint


def test_it_answers_201_with_the_token_for_a_text_file(client, student_user):
    client.force_login(student_user)
    response = client.post(URL, {"file": as_file(TEXT.encode())})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"token", "name", "bytes", "lines"}
    assert (body["name"], body["bytes"], body["lines"]) == ("words.txt", len(TEXT), 3)
    assert uploads.owned_by(body["token"], student_user)


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary")],
)
def test_it_answers_400_with_a_message_on_the_file_field_for_bad_files(client, student_user, data, message):
    client.force_login(student_user)
    response = client.post(URL, {"file": as_file(data, "bad.bin")})
    assert response.status_code == 400
    assert message in response.json()["file"][0]


def test_it_answers_400_when_no_file_is_sent(client, student_user):
    client.force_login(student_user)
    response = client.post(URL, {"other": "x"})
    assert response.status_code == 400
    assert "file" in response.json()["file"][0]


def test_a_file_over_the_default_limit_gets_a_json_413_not_a_server_error(client, student_user, settings):
    del settings.DISTLAB_UPLOAD_LIMIT
    client.force_login(student_user)
    data = b"word " * (21 * 1024 * 1024 // 5)  # 21 MiB: past both Django in-memory limits and ours
    response = client.post(URL, {"file": as_file(data, "big.txt")})
    assert response.status_code == 413
    assert response.json() == {"file": ["the file is 21 MiB; the limit is 20 MiB"]}
    assert uploads.list_for(student_user) == []


def test_a_file_just_over_a_small_limit_gets_the_same_clear_answer(client, student_user, settings):
    settings.DISTLAB_UPLOAD_LIMIT = 4096
    client.force_login(student_user)
    response = client.post(URL, {"file": as_file(b"a" * 4097, "big.txt")})
    assert response.status_code == 413
    assert "the limit is 4 KiB" in response.json()["file"][0]


def test_it_answers_401_without_an_account(client):
    response = client.post(URL, {"file": as_file(TEXT.encode())})
    assert response.status_code == 401
    assert client.get(URL).status_code == 401


def test_a_session_upload_needs_the_csrf_token(student_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(student_user)
    response = browser.post(URL, {"file": as_file(TEXT.encode())})
    assert response.status_code == 403
    browser.get("/labs/transactions/")  # any page with a form sets the cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post(URL, {"file": as_file(TEXT.encode())}, headers={"X-CSRFToken": token})
    assert response.status_code == 201


def test_a_script_uploads_with_an_api_token(student_user):
    token = Token.objects.create(user=student_user)
    script = Client(enforce_csrf_checks=True)
    response = script.post(URL, {"file": as_file(TEXT.encode())}, headers={"Authorization": f"Token {token.key}"})
    assert response.status_code == 201


def test_get_lists_only_the_users_own_uploads(client, student_user, other_student):
    uploads.save(other_student, "bobs.txt", b"bob\n")
    client.force_login(student_user)
    client.post(URL, {"file": as_file(TEXT.encode(), "mine.txt")})
    body = client.get(URL).json()
    assert [u["name"] for u in body["uploads"]] == ["mine.txt"]
    assert body["limit"] == uploads.limit()


# Starting a run on an upload


def start_run(client, token):
    body = {"lab": "mapreduce", "scenario": "wordcount", "params": {"input": "upload", "upload": token}}
    return client.post("/api/runs/", body, content_type="application/json")


def test_a_run_on_another_users_upload_is_refused_on_the_upload_field(client, student_user, other_student):
    bobs = uploads.save(other_student, "bob.txt", TEXT.encode())["token"]
    client.force_login(student_user)
    response = start_run(client, bobs)
    assert response.status_code == 400
    assert response.json() == {"params": {"upload": ["this upload belongs to another user"]}}


def test_a_run_on_an_unknown_upload_is_refused_with_a_clear_message(client, student_user):
    client.force_login(student_user)
    response = start_run(client, f"{student_user.pk}-{'0' * 64}")
    assert response.status_code == 400
    assert response.json()["params"]["upload"][0].startswith("unknown upload")
    response = start_run(client, "../../etc/passwd")
    assert response.status_code == 400
    assert response.json()["params"]["upload"][0].startswith("unknown upload")


def test_a_run_on_ones_own_upload_is_accepted(client, student_user):
    mine = uploads.save(student_user, "mine.txt", TEXT.encode())["token"]
    client.force_login(student_user)
    response = start_run(client, mine)
    assert response.status_code == 201, response.content


def test_the_mapreduce_lab_page_offers_a_file_input_beside_each_upload_field(client, student_user):
    client.force_login(student_user)
    page = client.get("/labs/mapreduce/").content.decode()
    assert page.count('class="field mr-upload"') == page.count('data-field="upload"') > 0
    assert "a UTF-8 text file up to 20 MiB" in page
    assert "mr-upload" not in client.get("/labs/transactions/").content.decode()
