"""The classes' pages and JSON endpoints: join with a code, a class's members, sheets and shared
runs, and sharing a run with a class."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.response import Response

from apps.runs.models import Run

from .forms import ClassForm, JoinForm, sheet_titles
from .models import Classroom, JoinRefused, join_class, share_run

ONLY_INSTRUCTORS_SHARE = "only the class's instructors share runs with it"


def visible_class(request, class_id):
    """The class if the user may open it; 404 otherwise, so class ids of others are not confirmed."""
    return get_object_or_404(Classroom.visible_to(request.user), pk=class_id)


def managed_class(request, class_id):
    """The class if the user teaches it (or is staff, who administer every class)."""
    classroom = visible_class(request, class_id)
    if not (request.user.is_staff or classroom.taught_by(request.user)):
        raise PermissionDenied("only the class's instructors may do this")
    return classroom


# Pages -----------------------------------------------------------------------------------------


def classes_page(request, join_form=None, class_form=None, status=200):
    user = request.user
    # Counted apart from the filter on the user's own rows, which would count only those.
    mine = Classroom.objects.filter(pk__in=Classroom.of(user).values("pk"))
    mine = mine.annotate(student_count=Count("memberships", distinct=True))
    teaching = set(user.teaching.values_list("pk", flat=True))
    others = []
    if user.is_staff:
        others = Classroom.objects.exclude(pk__in=[c.pk for c in mine])
        others = others.annotate(student_count=Count("memberships", distinct=True))
    context = {
        "classes": [(c, c.pk in teaching) for c in mine],
        "other_classes": others,
        "join_form": join_form or JoinForm(),
        "class_form": class_form or ClassForm(),
    }
    return render(request, "classroom/classes.html", context, status=status)


def class_list(request):
    """Your classes; staff make a new one here (and become its instructor)."""
    if request.method != "POST":
        return classes_page(request)
    if not request.user.is_staff:
        raise PermissionDenied("only staff create classes")
    form = ClassForm(request.POST)
    if not form.is_valid():
        return classes_page(request, class_form=form, status=400)
    classroom = form.save()
    classroom.instructors.add(request.user)
    messages.success(request, f"Created {classroom.name}: students join with the code {classroom.join_code}.")
    return redirect("class-page", class_id=classroom.pk)


@require_POST
def join(request):
    """The join form of the home page and the classes page."""
    form = JoinForm(request.POST)
    if form.is_valid():
        try:
            classroom, joined = join_class(request.user, form.cleaned_data["code"])
        except JoinRefused as exc:
            form.add_error("code", exc.message)
            return classes_page(request, join_form=form, status=exc.status)
        if joined:
            messages.success(request, f"You joined {classroom.name}.")
        elif classroom.taught_by(request.user):
            messages.info(request, f"You teach {classroom.name}.")
        else:
            messages.info(request, f"You are already in {classroom.name}.")
        return redirect("class-page", class_id=classroom.pk)
    return classes_page(request, join_form=form, status=400)


def class_page(request, class_id):
    classroom = visible_class(request, class_id)
    user = request.user
    titles = sheet_titles() or {}
    sheets = [
        {"slug": a.sheet, "title": titles.get(a.sheet, a.sheet), "url": f"/sheets/{a.sheet}/"}
        for a in classroom.assignments.all()
    ]
    shares = classroom.shared_runs.select_related("run", "run__owner", "shared_by")
    context = {
        "classroom": classroom,
        "teaches": classroom.taught_by(user),
        "can_manage": user.is_staff or classroom.taught_by(user),
        "is_student": classroom.memberships.filter(user=user).exists(),
        "instructors": classroom.instructors.order_by("username"),
        "memberships": classroom.memberships.select_related("user"),
        "sheets": sheets,
        "shares": shares,
        "presentation": classroom.presentations.filter(ended_at__isnull=True)
        .select_related("run", "presenter")
        .first(),
    }
    return render(request, "classroom/class.html", context)


@require_POST
def regenerate_code(request, class_id):
    classroom = managed_class(request, class_id)
    old = classroom.join_code
    classroom.regenerate_code()
    messages.success(request, f"The join code is now {classroom.join_code}; {old} no longer works.")
    return redirect("class-page", class_id=classroom.pk)


@require_POST
def remove_member(request, class_id):
    classroom = managed_class(request, class_id)
    user_id = _positive(request.POST.get("user"))
    membership = classroom.memberships.select_related("user").filter(user_id=user_id).first() if user_id else None
    if membership is None:
        messages.error(request, "That student is not in this class.")
    else:
        membership.delete()
        messages.success(
            request,
            f"Removed {membership.user.get_username()} from {classroom.name}: they no longer see its shared runs.",
        )
    return redirect("class-page", class_id=classroom.pk)


@require_POST
def share(request):
    """The run page's "Share with class" form."""
    run = get_object_or_404(Run.visible_runs(request.user), pk=_positive(request.POST.get("run")) or 0)
    class_id = _positive(request.POST.get("classroom"))
    classroom = Classroom.visible_to(request.user).filter(pk=class_id).first() if class_id else None
    if classroom is None:
        messages.error(request, "Pick one of your classes to share the run with.")
    elif not classroom.taught_by(request.user):
        messages.error(request, f"Only the instructors of {classroom.name} share runs with it.")
    else:
        _, created = share_run(classroom, run, request.user)
        done = "is now shared with" if created else "was already shared with"
        messages.success(request, f"Run #{run.pk} {done} {classroom.name}: its members may watch it.")
    return redirect("run-page", run_id=run.pk)


def _positive(raw):
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**63 else None


# JSON ------------------------------------------------------------------------------------------


class JoinSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=64, trim_whitespace=True)


class ShareSerializer(serializers.Serializer):
    run = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


def describe_class(classroom):
    return {"id": classroom.pk, "name": classroom.name, "url": f"/classes/{classroom.pk}/"}


@api_view(["POST"])
def api_join(request):
    """{"code"} → 201 when the user joined now, 200 when already a member; 400 for a wrong code
    (with the field's error), 429 once too many wrong codes were tried within the hour."""
    serializer = JoinSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    try:
        classroom, joined = join_class(request.user, serializer.validated_data["code"])
    except JoinRefused as exc:
        body = {"code": [exc.message]} if exc.status == 400 else {"detail": exc.message}
        return Response(body, status=exc.status)
    body = {"class": describe_class(classroom), "joined": joined}
    return Response(body, status=status.HTTP_201_CREATED if joined else status.HTTP_200_OK)


@api_view(["POST"])
def api_share(request, class_id):
    """{"run"} → 201 shared now, 200 already shared. Only the class's instructors share."""
    classroom = visible_class(request, class_id)
    if not classroom.taught_by(request.user):
        return Response({"detail": ONLY_INSTRUCTORS_SHARE}, status=status.HTTP_403_FORBIDDEN)
    serializer = ShareSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    run_id = serializer.validated_data["run"]
    run = Run.visible_runs(request.user).filter(pk=run_id).first()
    if run is None:
        return Response({"run": [f"no run #{run_id} that you may see"]}, status=status.HTTP_400_BAD_REQUEST)
    _, created = share_run(classroom, run, request.user)
    body = {"class": describe_class(classroom), "run": run.pk, "shared": True, "created": created}
    return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
