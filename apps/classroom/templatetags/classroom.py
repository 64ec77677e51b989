"""What the classroom adds to the platform's pages (the runs app loads these tags and never
imports the classroom): the run page's "Share with class", the run tables' "shared" mark, the
home page's join form."""

from django import template
from django.template.exceptions import TemplateDoesNotExist
from django.template.loader import get_template

from ..forms import JoinForm
from ..models import Classroom, SharedRun

register = template.Library()


@register.inclusion_tag("classroom/_run_share.html", takes_context=True)
def run_share(context, run):
    """The classes the viewer may still share the run with (those they teach), and those it is
    shared with that the viewer can see."""
    user = context["request"].user
    shared_in = Classroom.visible_to(user).filter(shared_runs__run=run).order_by("name")
    teaching = user.teaching.exclude(shared_runs__run=run).order_by("name") if user.is_authenticated else []
    return {"run": run, "teaching": teaching, "shared_in": list(shared_in), "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("classroom/_shared_mark.html", takes_context=True)
def shared_mark(context, run):
    """ "shared with <class>" on a run someone else owns that one of the viewer's classes was shown.
    One query per page: the runs shared with the viewer's classes are read once per request."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated) or run.owner_id == user.pk:
        return {"classes": []}
    if not hasattr(request, "_classroom_shared"):
        shared = {}
        for run_id, name in SharedRun.objects.filter(classroom__in=Classroom.of(user)).values_list(
            "run_id", "classroom__name"
        ):
            shared.setdefault(run_id, []).append(name)
        request._classroom_shared = shared
    return {"classes": sorted(request._classroom_shared.get(run.pk, []))}


@register.inclusion_tag("classroom/_join.html", takes_context=True)
def join_form(context):
    user = context["request"].user
    return {"join_form": JoinForm(), "classes": list(Classroom.of(user)), "csrf_token": context.get("csrf_token")}


@register.simple_tag(takes_context=True)
def optional_include(context, name):
    """A partial another part of the classroom provides, or nothing while it does not exist."""
    try:
        partial = get_template(name)
    except TemplateDoesNotExist:
        return ""
    return partial.render(context.flatten(), context.get("request"))
