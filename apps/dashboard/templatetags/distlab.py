from django import template
from django.templatetags.static import static

from apps.dashboard.finders import STATIC_PATH

register = template.Library()


@register.simple_tag
def plotly_src() -> str:
    """The URL of Plotly's JS, a static file (apps/dashboard/finders.py)."""
    return static(STATIC_PATH)
