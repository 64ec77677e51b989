from datetime import timedelta

from celery import shared_task
from django.conf import settings

from . import presenting


@shared_task(name="apps.classroom.tasks.end_idle_presentations")
def end_idle_presentations():
    """The beat's sweep (CELERY_BEAT_SCHEDULE): presentations left on by a presenter who went away."""
    return presenting.end_idle_presentations(timedelta(seconds=settings.DISTLAB_PRESENTATION_IDLE))
