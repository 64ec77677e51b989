"""One line instead of a traceback when a command finds the control database unusable: not
running, or not migrated yet (a fresh checkout before `make services`)."""

import functools
from collections.abc import Callable

from django.conf import settings
from django.core.management.base import CommandError
from django.db import OperationalError, ProgrammingError

# MariaDB / MySQL error numbers, kept by Django's wrappers as the first argument.
NO_SUCH_TABLE = 1146
CANNOT_CONNECT = 2003


def control_database_required(handle: Callable) -> Callable:
    """Wraps a command's handle(): a missing schema or an unreachable control database exits 1
    with one line saying what to do."""

    @functools.wraps(handle)
    def wrapper(*args, **kwargs):
        try:
            return handle(*args, **kwargs)
        except ProgrammingError as exc:
            if _code(exc) != NO_SUCH_TABLE:
                raise
            message = (
                f"the control database has no tables yet ({exc.args[1]}): run `make services`, or `manage.py migrate`"
            )
            raise CommandError(message, returncode=1) from None
        except OperationalError as exc:
            if _code(exc) != CANNOT_CONNECT:
                raise
            db = settings.DATABASES["default"]
            message = (
                f"the control database at {db['HOST']}:{db['PORT']} does not answer: start it with `make services`"
            )
            raise CommandError(message + ", or point DATABASE_URL at yours", returncode=1) from None

    return wrapper


def _code(exc: Exception) -> int | None:
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
