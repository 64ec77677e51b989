import os

from celery import Celery

# What a deployment runs defaults to the production settings (they refuse to start without a
# SECRET_KEY); `make run` and `make test` name the development and test ones explicitly.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labsite.settings.prod")

app = Celery("labsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
