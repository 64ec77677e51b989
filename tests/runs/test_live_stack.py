"""The whole stack as a browser sees it: daphne serving the websocket, a Celery worker running the
run, and the web server restarted in the middle of it."""

import asyncio
import json

import pytest
import websockets
from django.test import Client
from rest_framework.authtoken.models import Token

from apps.runs.models import Event
from tests.conftest import session_cookie, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


async def watch(stack, cookie, run_id, after, stop_after=None):
    """Collects event seqs from the websocket until the run ends (its end event and a finished
    status both arrived: a viewer who connects after the end gets the status before the stored
    events) or `stop_after` events arrived."""
    url = stack.url.replace("http", "ws") + f"/ws/runs/{run_id}/?after={after}"
    seqs, ended, over = [], False, False
    async with websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": stack.url}) as ws:
        while not (ended and over) and (stop_after is None or len(seqs) < stop_after):
            try:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
            except websockets.ConnectionClosed:
                break
            if frame["type"] == "events":
                seqs.extend(e["seq"] for e in frame["events"])
                ended = ended or any(e["kind"] == "end" for e in frame["events"])
            elif frame["type"] == "status":
                over = over or frame["status"] in ("done", "failed", "cancelled")
    return seqs, ended and over


def test_restarting_the_web_server_mid_run_loses_no_event_for_a_reconnecting_viewer(live_stack, student_user):
    token, _ = Token.objects.get_or_create(user=student_user)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    body = {"lab": "diagnostics", "scenario": "stream-load", "params": {"events": 3000, "rate": 400}}
    run_id = client.post("/api/runs/", body, content_type="application/json").json()["id"]
    cookie = session_cookie(student_user)

    first, _ = asyncio.run(watch(live_stack, cookie, run_id, after=0, stop_after=300))
    live_stack.restart_web()
    rest, finished = asyncio.run(watch(live_stack, cookie, run_id, after=first[-1]))
    assert finished
    stored = Event.objects.filter(run_id=run_id).count()
    assert first + rest == list(range(1, stored + 1))
    run = wait_until(lambda: (r := client.get(f"/api/runs/{run_id}/").json())["status"] == "done" and r, 30, "done")
    assert run["verdict"] == "pass" and run["events"] == stored
