from django.contrib import admin, messages
from django.contrib.auth import get_user_model

from .forms import AssignmentForm
from .models import (
    Answer,
    Assignment,
    CheckpointPass,
    Classroom,
    FailedJoin,
    Membership,
    Presentation,
    SharedRun,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)
    readonly_fields = ("joined_at",)
    verbose_name = "student"
    verbose_name_plural = "students"


class AssignmentInline(admin.TabularInline):
    model = Assignment
    form = AssignmentForm
    extra = 1
    verbose_name = "lab sheet"
    verbose_name_plural = "lab sheets (in the order the class works through them)"


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = ("name", "join_code", "instructor_names", "student_count", "created_at")
    search_fields = ("name", "join_code", "instructors__username")
    readonly_fields = ("join_code", "created_at")
    filter_horizontal = ("instructors",)
    inlines = [MembershipInline, AssignmentInline]
    actions = ["regenerate_codes"]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "instructors":
            kwargs["queryset"] = get_user_model().objects.filter(is_staff=True).order_by("username")
            kwargs["help_text"] = (
                "Staff who teach the class: they share runs with it, present to it and read its board."
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # As on the classes page: whoever makes a class teaches it unless they named its instructors.
        if not change and not form.instance.instructors.exists():
            form.instance.instructors.add(request.user)

    @admin.display(description="instructors")
    def instructor_names(self, obj):
        return ", ".join(obj.instructors.order_by("username").values_list("username", flat=True)) or "—"

    @admin.display(description="students")
    def student_count(self, obj):
        return obj.memberships.count()

    @admin.action(description="Give the selected classes new join codes (the old ones stop working)")
    def regenerate_codes(self, request, queryset):
        for classroom in queryset:
            classroom.regenerate_code()
        messages.success(request, f"New join codes for {queryset.count()} class(es).")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "classroom", "joined_at")
    list_filter = ("classroom",)
    search_fields = ("user__username", "classroom__name")
    raw_id_fields = ("user",)
    list_select_related = ("user", "classroom")


@admin.register(SharedRun)
class SharedRunAdmin(admin.ModelAdmin):
    list_display = ("run", "classroom", "shared_by", "shared_at")
    list_filter = ("classroom",)
    search_fields = ("classroom__name", "run__scenario", "run__lab")
    raw_id_fields = ("run",)
    list_select_related = ("run", "classroom", "shared_by")

    def get_changeform_initial_data(self, request):
        return {"shared_by": request.user.pk, **super().get_changeform_initial_data(request)}


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record the site keeps by itself; the admin reads it (and may delete it)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Presentation)
class PresentationAdmin(ReadOnlyAdmin):
    list_display = ("classroom", "run", "presenter", "started_at", "ended_at")
    list_filter = ("classroom", ("ended_at", admin.EmptyFieldListFilter))
    search_fields = ("classroom__name", "presenter__username")
    list_select_related = ("classroom", "run", "presenter")


class StudentClassFilter(admin.SimpleListFilter):
    """Progress is the student's, not a class's: filter it by the classes its student is in."""

    title = "class"
    parameter_name = "classroom"

    def lookups(self, request, model_admin):
        return [(c.pk, c.name) for c in Classroom.objects.all()]

    def queryset(self, request, queryset):
        if self.value() and self.value().isdigit():
            return queryset.filter(user__memberships__classroom_id=int(self.value()))
        return queryset


@admin.register(CheckpointPass)
class CheckpointPassAdmin(ReadOnlyAdmin):
    list_display = ("user", "sheet", "checkpoint", "run", "passed_at")
    list_filter = (StudentClassFilter, "sheet")
    search_fields = ("user__username", "sheet", "checkpoint")
    list_select_related = ("user", "run")


@admin.register(Answer)
class AnswerAdmin(ReadOnlyAdmin):
    list_display = ("user", "sheet", "checkpoint", "short_text", "updated_at")
    list_filter = (StudentClassFilter, "sheet")
    search_fields = ("user__username", "sheet", "checkpoint", "text")
    list_select_related = ("user",)

    @admin.display(description="answer")
    def short_text(self, obj):
        return obj.text if len(obj.text) <= 80 else obj.text[:79] + "…"


@admin.register(FailedJoin)
class FailedJoinAdmin(ReadOnlyAdmin):
    list_display = ("user", "code", "at")
    search_fields = ("user__username", "code")
    list_select_related = ("user",)
