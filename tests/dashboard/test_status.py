"""/api/status/: everyone sees what is up and what is down; only staff see what it runs and where."""

import json

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def status_of(user):
    client = Client()
    client.force_login(user)
    response = client.get("/api/status/")
    assert response.status_code == 200
    return response.json()


def test_a_student_sees_each_part_up_or_down_and_nothing_else(student_user):
    body = status_of(student_user)
    assert [(n["name"], n["ok"]) for n in body["nodes"]] == [
        ("control database", True),
        ("control redis", True),
        ("mariadb", True),
        ("redis", True),
        ("zookeeper", True),
    ]
    assert all(set(node) == {"name", "role", "ok"} for node in body["nodes"])
    assert set(body["celery"]) == {"ok", "detail"}  # no worker names: they carry host names


def test_staff_see_versions_and_timings(instructor):
    body = status_of(instructor)
    nodes = {node["name"]: node for node in body["nodes"]}
    assert nodes["redis"]["detail"].startswith("redis ") and nodes["zookeeper"]["detail"].startswith("zookeeper ")
    assert "MariaDB" in nodes["mariadb"]["detail"] and nodes["mariadb"]["ms"] >= 0
    assert "workers" in body["celery"]


def test_a_node_that_is_down_is_down_for_students_too_without_its_address(student_user, settings):
    settings.LAB_ZK_HOSTS = "127.0.0.1:9"  # nothing listens on the discard port
    body = status_of(student_user)
    zookeeper = next(node for node in body["nodes"] if node["name"] == "zookeeper")
    assert zookeeper == {"name": "zookeeper", "role": "lab node", "ok": False}
    assert "127.0.0.1" not in json.dumps(body)
