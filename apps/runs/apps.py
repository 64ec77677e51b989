from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "apps.runs"
    label = "runs"

    def ready(self):
        from django.utils.module_loading import autodiscover_modules

        # Every installed lab app registers its scenarios from its own scenarios.py.
        autodiscover_modules("scenarios")
