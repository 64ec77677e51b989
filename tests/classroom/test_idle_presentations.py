"""The beat ends a presentation whose presenter went away (no view moved for
DISTLAB_PRESENTATION_IDLE seconds), and tells the class, so no banner stays up for ever; a
presentation still being steered is left alone."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from apps.classroom import tasks
from apps.classroom.models import Presentation
from apps.classroom.presenting import start_presentation, store_view
from tests.classroom.test_presenting import school, socket  # noqa: F401, F811 - school is a fixture

pytestmark = pytest.mark.django_db(transaction=True)


def age(presentation, seconds):
    Presentation.objects.filter(pk=presentation.pk).update(updated_at=timezone.now() - timedelta(seconds=seconds))


async def test_it_ends_an_idle_presentation_tells_the_class_and_spares_a_steered_one(school, settings):  # noqa: F811
    settings.DISTLAB_PRESENTATION_IDLE = 3600
    idle, _ = await sync_to_async(start_presentation)(school["a"], school["run"], school["charlie"])
    steered, _ = await sync_to_async(start_presentation)(school["b"], school["run"], school["dana"])
    await sync_to_async(age)(idle, 3601)
    await sync_to_async(age)(steered, 3601)
    # dana moves her view: her presentation is not idle, however old it is.
    view = {"k": 2, "live": False, "playing": False, "rate": 1.0, "highlight": None}
    assert await sync_to_async(store_view)(steered.pk, school["dana"].pk, view)

    alice = await socket(school["alice"], "/ws/classroom/")
    listed = await alice.receive_json_from(timeout=5)
    assert [p["id"] for p in listed["presentations"]] == [idle.pk]

    assert await sync_to_async(tasks.end_idle_presentations)() == [idle.pk]

    told = await alice.receive_json_from(timeout=5)
    assert told == {"type": "ended", "presentation": {"id": idle.pk, "class": school["a"].pk, "run": school["run"].pk}}
    await alice.disconnect()
    ended = await sync_to_async(
        lambda: set(Presentation.objects.filter(ended_at__isnull=False).values_list("pk", flat=True))
    )()
    assert ended == {idle.pk}
    # A second sweep finds nothing more to end.
    assert await sync_to_async(tasks.end_idle_presentations)() == []
