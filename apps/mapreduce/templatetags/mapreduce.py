from django import template

from apps.mapreduce import uploads

register = template.Library()


@register.simple_tag
def upload_limit():
    """The upload size limit as a reader says it: "20 MB"."""
    return uploads.human_size(uploads.limit())
