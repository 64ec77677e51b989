from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    name = "apps.classroom"
    label = "classroom"

    def ready(self):
        from apps.runs.models import RUN_ACCESS

        from .access import shared_with

        RUN_ACCESS.append(shared_with)
