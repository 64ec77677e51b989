from django.contrib import admin

from .models import Event, Run


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "lab", "scenario", "owner", "status", "verdict", "expected", "events_count", "created_at")
    list_filter = ("lab", "status", "verdict", "owner")
    search_fields = ("scenario", "owner__username", "failure_reason")
    readonly_fields = [f.name for f in Run._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("run", "seq", "t", "kind", "actor", "to", "label")
    list_filter = ("kind",)
    search_fields = ("label", "actor")
    list_select_related = ("run",)
    raw_id_fields = ("run",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
