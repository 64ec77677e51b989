from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

DEMO_PASSWORD = "labdemo"
DEMO_CLASS = "Demo class"


class Command(BaseCommand):
    help = (
        "Creates the demo accounts `instructor` (staff) and `student`, password labdemo, and a class "
        f'"{DEMO_CLASS}" that instructor teaches, with student in it and every lab sheet set. DEBUG only.'
    )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("demo accounts are for development only (DEBUG is off)")
        User = get_user_model()
        users = {}
        for username, staff in (("instructor", True), ("student", False)):
            user, created = User.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = staff
            user.set_password(DEMO_PASSWORD)
            user.save()
            users[username] = user
            self.stdout.write(f"{'created' if created else 'reset'} {username}")
        if apps.is_installed("apps.classroom"):
            self.seed_class(users["instructor"], users["student"])

    def seed_class(self, instructor, student):
        # Through the app registry and by dotted name: the runs app does not import the classroom.
        Classroom = apps.get_model("classroom", "Classroom")
        Membership = apps.get_model("classroom", "Membership")
        Assignment = apps.get_model("classroom", "Assignment")
        classroom, created = Classroom.objects.get_or_create(name=DEMO_CLASS)
        classroom.instructors.add(instructor)
        Membership.objects.get_or_create(classroom=classroom, user=student)
        sheets = import_string("apps.classroom.forms.sheet_titles")() or {}
        for position, slug in enumerate(sorted(sheets)):
            Assignment.objects.update_or_create(classroom=classroom, sheet=slug, defaults={"position": position})
        self.stdout.write(
            f"{'created' if created else 'kept'} {DEMO_CLASS} (join code {classroom.join_code}, "
            f"{len(sheets)} sheet{'s' if len(sheets) != 1 else ''})"
        )
