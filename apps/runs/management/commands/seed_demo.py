from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

DEMO_PASSWORD = "labdemo"


class Command(BaseCommand):
    help = "Creates the demo accounts `instructor` (staff) and `student`, password labdemo. DEBUG only."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("demo accounts are for development only (DEBUG is off)")
        User = get_user_model()
        for username, staff in (("instructor", True), ("student", False)):
            user, created = User.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = staff
            user.set_password(DEMO_PASSWORD)
            user.save()
            self.stdout.write(f"{'created' if created else 'reset'} {username}")
