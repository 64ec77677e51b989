from django.apps import AppConfig


class DiagnosticsConfig(AppConfig):
    name = "apps.diagnostics"
    label = "diagnostics"
