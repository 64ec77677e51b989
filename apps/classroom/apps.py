from django.apps import AppConfig


class ClassroomConfig(AppConfig):
    name = "apps.classroom"
    label = "classroom"

    def ready(self):
        from apps.runs.models import RUN_ACCESS

        from .access import shared_with

        RUN_ACCESS.append(shared_with)

        from django.db.models.signals import post_delete, post_save

        from .board import membership_changed
        from .models import Membership

        # A student who joins (or is removed) appears on (or leaves) the class's open boards.
        post_save.connect(membership_changed, sender=Membership, dispatch_uid="board-membership-saved")
        post_delete.connect(membership_changed, sender=Membership, dispatch_uid="board-membership-deleted")

        from apps.runs.models import Run
        from apps.runs.signals import run_finished

        from .judge import on_run_finished

        # Runs are judged against the lab sheets where they ran (the worker), never in a web request.
        run_finished.connect(on_run_finished, sender=Run, dispatch_uid="classroom-judge-run")
