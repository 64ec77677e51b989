from pathlib import Path

import plotly
from django.http import FileResponse, Http404
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from rest_framework.decorators import api_view
from rest_framework.response import Response

from apps.runs.models import Run
from apps.runs.registry import LABS

from . import health

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def home(request):
    recent = Run.visible_runs(request.user)[:12]
    return render(request, "dashboard/home.html", {"labs": [lab.describe() for lab in LABS.values()], "recent": recent})


@api_view(["GET"])
def status(request):
    return Response({"nodes": health.nodes(), "celery": health.workers()})


@cache_control(max_age=86400, public=True)
def plotly_js(request, version):
    # The Plotly bundle ships inside the pinned `plotly` package; its version is in the URL.
    if version != plotly.__version__ or not PLOTLY_JS.exists():
        raise Http404("no such plotly bundle")
    return FileResponse(open(PLOTLY_JS, "rb"), content_type="text/javascript")
