from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from .models import Run
from .registry import LABS


def lab_page(request, lab):
    if lab not in LABS:
        raise Http404("no such lab")
    return render(request, "runs/lab.html", {"lab": LABS[lab], "lab_info": LABS[lab].describe()})


def run_page(request, run_id):
    run = get_object_or_404(Run.visible_runs(request.user), pk=run_id)
    lab = LABS.get(run.lab)
    scenario = lab.scenarios.get(run.scenario) if lab else None
    page = {
        "id": run.pk,
        "lab": run.lab,
        "scenario": run.scenario,
        "status": run.status,
        "ws": f"/ws/runs/{run.pk}/",
        "api": f"/api/runs/{run.pk}/",
        "can_control": run.visible_to(request.user),
        "faults": scenario.faults_for(run.params) if scenario else [],
        "invariants": scenario.describe()["invariants"] if scenario else [],
    }
    return render(request, "runs/run.html", {"run": run, "scenario": scenario, "page": page})


def run_list(request):
    runs = Run.visible_runs(request.user)
    filters = {}
    for field in ("lab", "status", "verdict"):
        value = request.GET.get(field)
        if value:
            filters[field] = value
    runs = runs.filter(**filters)
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "runs/list.html",
        {
            "page": page,
            "filters": filters,
            "labs": sorted(LABS),
            "statuses": Run.Status.values,
            "verdicts": Run.Verdict.values,
        },
    )


def describe_run(run):
    """What the compare page shows of one run before its events arrive."""
    lab = LABS.get(run.lab)
    scenario = lab.scenarios.get(run.scenario) if lab else None
    return {
        "id": run.pk,
        "lab": run.lab,
        "scenario": run.scenario,
        "title": scenario.title if scenario else run.scenario,
        "status": run.status,
        "seed": run.seed,
        "params": run.params,
        "expected": run.expected,
        "url": f"/runs/{run.pk}/",
        "ws": f"/ws/runs/{run.pk}/",
        "invariants": scenario.describe()["invariants"] if scenario else [],
    }


@login_required
def run_compare(request):
    """Two runs side by side, live: /runs/compare/?a=<id>&b=<id>."""
    ids, errors = {}, []
    for key in ("a", "b"):
        raw = request.GET.get(key, "").strip()
        if raw.isdigit() and int(raw) > 0:
            ids[key] = int(raw)
        else:
            errors.append(
                f"{key} must be a run id (a positive whole number), not {raw!r}" if raw else f"{key} is missing"
            )
    if errors:
        return render(request, "runs/compare.html", {"errors": errors}, status=400)
    visible = Run.visible_runs(request.user)
    runs = []
    for key in ("a", "b"):
        run = visible.filter(pk=ids[key]).first()
        if run is None:
            raise Http404(f"no run #{ids[key]} that you may see")
        runs.append(run)
    page = {"runs": [describe_run(run) for run in runs]}
    return render(request, "runs/compare.html", {"runs": runs, "page": page})
