import pytest
from django.conf import settings

from apps.runs.registry import LABS


@pytest.fixture(autouse=True)
def transactions_lab():
    """The lab, registered for each test here. Until "apps.transactions" is in INSTALLED_APPS (where
    the runs app's autodiscovery imports it) it is taken out again, so other tests see the labs the
    settings give them."""
    from apps.transactions.scenarios import LAB

    installed = "apps.transactions" in settings.INSTALLED_APPS
    LABS["transactions"] = LAB
    yield LAB
    if not installed:
        LABS.pop("transactions", None)
