from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .models import Run
from .registry import LABS
from .transfer import ImportRefused, import_run


def lab_page(request, lab):
    if lab not in LABS:
        raise Http404("no such lab")
    lab = LABS[lab]
    info = lab.describe()
    for scenario in info["scenarios"]:
        for name, param in scenario["params"].items():
            param["partial"] = lab.field_partials.get(name)
    context = {"lab": lab, "lab_info": info, **(lab.lab_context() if lab.lab_context else {})}
    return render(request, "runs/lab.html", context)


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
        # An imported run is a record only: nothing to steer, no faults to inject.
        "can_control": run.controllable_by(request.user) and not run.is_imported,
        "faults": scenario.faults_for(run.params) if scenario else [],
        "invariants": scenario.describe()["invariants"] if scenario else [],
        # Who is looking: the verdict calls the faults this user injected "you killed db1".
        "viewer": request.user.get_username() if request.user.is_authenticated else "",
        # Narration, matched against the events in the browser (narration.js) as Caption.matches does.
        "watch": scenario.watch if scenario else "",
        "captions": [c.describe() for c in scenario.captions] if scenario else [],
    }
    duration = scenario.duration_text(run.params) if scenario else ""
    context = {"run": run, "lab": lab, "scenario": scenario, "page": page, "duration": duration}
    return render(request, "runs/run.html", context)


def run_list(request, import_error=None):
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
            "import_error": import_error,
        },
        status=400 if import_error else 200,
    )


@require_POST
def run_import(request):
    """The history page's upload: an exported run comes back as the user's own, read-only."""
    upload = request.FILES.get("file")
    if upload is None:
        return run_list(request, import_error="choose an exported run (a .jsonl file) to import")
    try:
        run = import_run(upload, request.user)
    except ImportRefused as exc:
        return run_list(request, import_error=f"{upload.name}: {exc}")
    messages.success(request, f"Imported {upload.name} as run {run.pk}.")
    return redirect("run-page", run_id=run.pk)


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
    if runs[0].lab != runs[1].lab:
        # Only two runs of one lab share scenarios, invariants and a timeline to set side by side.
        errors = [
            f"Run #{runs[0].pk} is a {runs[0].lab} run and run #{runs[1].pk} a {runs[1].lab} run: "
            "only two runs of the same lab can be compared."
        ]
        return render(request, "runs/compare.html", {"errors": errors}, status=400)
    page = {"runs": [describe_run(run) for run in runs]}
    return render(request, "runs/compare.html", {"runs": runs, "page": page})
