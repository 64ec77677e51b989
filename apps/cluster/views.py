"""The admin's page of dedicated clusters: every node with its state, and the faults as buttons."""

import re

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.runs import control
from apps.runs.models import Run

from .conf import supervisor
from .faults import NAMED
from .supervisor import ClusterError

# The faults offered as buttons, with the options each takes from the page.
BUTTONS = NAMED
RUN_CLUSTER = re.compile(r"^run(\d+)$")


@staff_member_required
def clusters(request):
    rows = []
    for cluster in supervisor().clusters():
        match = RUN_CLUSTER.match(cluster.name)
        run = Run.objects.filter(pk=int(match.group(1))).first() if match else None
        rows.append({"cluster": cluster, "run": run})
    return render(
        request, "cluster/admin_clusters.html", {"rows": rows, "buttons": BUTTONS, "title": "Dedicated clusters"}
    )


@staff_member_required
@require_POST
def fault(request, name, node):
    action = request.POST.get("action", "")
    options = {}
    if action == "latency":
        try:
            options["ms"] = int(request.POST.get("ms", ""))
            if not 0 <= options["ms"] <= 60_000:
                raise ValueError
        except ValueError:
            messages.error(request, "latency takes whole milliseconds from 0 to 60000")
            return redirect("cluster-admin")
    elif action not in BUTTONS:
        messages.error(request, f"unknown fault {action!r}")
        return redirect("cluster-admin")
    match = RUN_CLUSTER.match(name)
    run = Run.objects.filter(pk=int(match.group(1))).first() if match else None
    if run is not None and not run.is_finished:
        # A live run's nodes are faulted through the run, so its history records the fault.
        control.send(
            run.pk,
            {"action": "fault", "kind": action, "target": node, "options": options, "by": request.user.get_username()},
        )
        messages.success(request, f"{action} {node}: handed to run {run.pk}; it acts at its next step")
        return redirect("cluster-admin")
    try:
        done = supervisor().fault(name, node, action, **options)
    except ClusterError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{action} {node}: {done['state']}")
    return redirect("cluster-admin")


@staff_member_required
@require_POST
def down(request, name):
    try:
        supervisor().down(name)
    except ClusterError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"cluster {name} is down")
    return redirect("cluster-admin")
