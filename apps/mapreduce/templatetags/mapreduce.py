from django import template

from apps.mapreduce import uploads
from apps.mapreduce.engine.sizes import human_bytes

register = template.Library()


@register.simple_tag
def upload_limit():
    """The upload size limit as a reader says it: "20 MiB"."""
    return human_bytes(uploads.limit())
