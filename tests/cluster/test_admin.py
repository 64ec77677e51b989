"""The admin's clusters page: staff see every dedicated node and fault it with a button."""

import html

import pytest
from django.test import Client

from apps.cluster.conf import supervisor
from apps.cluster.procs import alive

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_cluster():
    sup = supervisor()
    cluster = sup.up("admin-demo", redis=1)
    yield cluster
    sup.down("admin-demo", missing_ok=True)


def staff(instructor):
    client = Client()
    client.force_login(instructor)
    return client


def test_staff_see_each_node_and_kill_it_with_a_button(instructor, demo_cluster):
    client = staff(instructor)
    page = client.get("/admin/clusters/").content.decode()
    assert 'data-testid="cluster-admin-demo"' in page and "redis1" in page
    pid = demo_cluster.node("redis1").pid
    response = client.post("/admin/clusters/admin-demo/redis1/fault/", {"action": "kill"}, follow=True)
    assert "kill redis1: down" in html.unescape(response.content.decode()).lower()
    assert not alive(pid)
    assert supervisor().status("admin-demo").node("redis1").state == "down"
    client.post("/admin/clusters/admin-demo/redis1/fault/", {"action": "restart"})
    assert supervisor().status("admin-demo").node("redis1").state == "up"


def test_bad_fault_input_gets_a_message_not_an_error(instructor, demo_cluster):
    client = staff(instructor)
    for data, message in (
        ({"action": "latency", "ms": "soon"}, "whole milliseconds"),
        ({"action": "melt"}, "unknown fault"),
    ):
        response = client.post("/admin/clusters/admin-demo/redis1/fault/", data, follow=True)
        assert response.status_code == 200 and message in html.unescape(response.content.decode()).lower()
    response = client.post("/admin/clusters/admin-demo/db7/fault/", {"action": "kill"}, follow=True)
    assert "no node 'db7'" in html.unescape(response.content.decode()).lower()
    assert supervisor().status("admin-demo").node("redis1").state == "up"


def test_taking_a_cluster_down_from_the_admin(instructor, demo_cluster):
    client = staff(instructor)
    client.post("/admin/clusters/admin-demo/down/")
    assert "admin-demo" not in [c.name for c in supervisor().clusters()]
    assert not alive(demo_cluster.node("redis1").pid)


def test_students_cannot_reach_the_clusters_page(student_user, demo_cluster):
    client = Client()
    client.force_login(student_user)
    assert client.get("/admin/clusters/").status_code == 302
    assert client.post("/admin/clusters/admin-demo/redis1/fault/", {"action": "kill"}).status_code == 302
    assert supervisor().status("admin-demo").node("redis1").state == "up"
