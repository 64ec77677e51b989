"""The run page's "Present" bar: {% load presenting %}{% present_bar run %}. It carries, for
static/classroom/js/follow.js, the classes the viewer may present the run to and the live
presentations of the run in those classes."""

from django import template

from ..presenting import describe, live_presentations

register = template.Library()


@register.inclusion_tag("classroom/_present.html", takes_context=True)
def present_bar(context, run):
    user = context["request"].user
    teaching = list(user.teaching.order_by("name")) if user.is_authenticated else []
    live = [p for p in live_presentations(teaching) if p.run_id == run.pk]
    data = {
        "classes": [{"id": c.pk, "name": c.name} for c in teaching],
        "live": [describe(p) for p in live],
    }
    return {"run": run, "teaching": teaching, "live": live, "data": data, "csrf_token": context.get("csrf_token")}
