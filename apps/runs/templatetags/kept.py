from django import template

from apps.runs import kept

register = template.Library()


@register.simple_tag
def kept_data(run):
    """The kept-data state of `run` (apps/runs/kept.py `describe`), or None if it kept nothing."""
    return kept.describe(run)
