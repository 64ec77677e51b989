import plotly
from django import template
from django.urls import reverse

register = template.Library()


@register.simple_tag
def plotly_src():
    return reverse("plotly-js", args=[plotly.__version__])
