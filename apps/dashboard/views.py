from django.shortcuts import render
from rest_framework.decorators import api_view
from rest_framework.response import Response

from apps.runs.models import Run
from apps.runs.registry import LABS

from . import health


def home(request):
    recent = Run.visible_runs(request.user)[:12]
    return render(request, "dashboard/home.html", {"labs": [lab.describe() for lab in LABS.values()], "recent": recent})


@api_view(["GET"])
def status(request):
    """Every part of the system, up or down. Versions, hosts, ports and worker names (in the probes'
    details) tell an attacker what to aim at, so only staff see them."""
    nodes, celery = health.nodes(), health.workers()
    if not request.user.is_staff:
        nodes = [{key: node[key] for key in ("name", "role", "ok")} for node in nodes]
        celery = {"ok": celery["ok"], "detail": "answering" if celery["ok"] else "no worker answered"}
    return Response({"nodes": nodes, "celery": celery})
