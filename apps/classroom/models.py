"""The classroom: classes and their members, runs shared with a class, presentations, and each
student's progress through the lab sheets (the sheets themselves are Markdown files in the labs'
folders, apps/classroom/sheets.py)."""

import secrets

from django.conf import settings
from django.db import models

# Join codes avoid look-alike characters (0/O, 1/I/L), so one read off a projector types right.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8


def new_join_code():
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class Classroom(models.Model):
    name = models.CharField(max_length=100)
    join_code = models.CharField(max_length=16, unique=True, default=new_join_code)
    # Staff who teach it: they present to it, share runs with it and read its board.
    instructors = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="teaching", blank=True)
    students = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="classes", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return self.name

    def taught_by(self, user):
        return bool(user and user.is_authenticated and self.instructors.filter(pk=user.pk).exists())

    def has_member(self, user):
        """A student of the class or one of its instructors."""
        if not (user and user.is_authenticated):
            return False
        return self.taught_by(user) or self.memberships.filter(user=user).exists()


class Membership(models.Model):
    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["classroom", "user__username"]
        constraints = [models.UniqueConstraint(fields=["classroom", "user"], name="one_membership_per_class")]

    def __str__(self):
        return f"{self.user} in {self.classroom}"


class Assignment(models.Model):
    """A lab sheet the class works through; `sheet` is its slug, "<lab>/<file name without .md>"."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="assignments")
    sheet = models.CharField(max_length=120)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["classroom", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["classroom", "sheet"], name="sheet_once_per_class")]

    def __str__(self):
        return f"{self.sheet} for {self.classroom}"


class SharedRun(models.Model):
    """A run an instructor showed a class: its members may watch it (never steer it)."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="shared_runs")
    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="shares")
    shared_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    shared_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-shared_at"]
        constraints = [models.UniqueConstraint(fields=["classroom", "run"], name="run_shared_once_per_class")]

    def __str__(self):
        return f"run {self.run_id} shared with {self.classroom}"


class Presentation(models.Model):
    """An instructor presenting a run to a class; at most one is live (ended_at null) per class.
    `view` is the presenter's playback position, as the followers mirror it:
    {"k": events shown, "live": bool, "playing": bool, "rate": float, "highlight": str | null}."""

    classroom = models.ForeignKey(Classroom, on_delete=models.CASCADE, related_name="presentations")
    run = models.ForeignKey("runs.Run", on_delete=models.CASCADE, related_name="presentations")
    presenter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presentations")
    view = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # "At most one live per class" is kept by the code that starts one, under a row lock on
        # the class: MariaDB has no partial unique index to say it.
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["classroom", "ended_at"])]

    def __str__(self):
        return f"{self.presenter} presenting run {self.run_id} to {self.classroom}"


class CheckpointPass(models.Model):
    """A student's own finished run that met a checkpoint of a sheet: the first one stands."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="checkpoint_passes")
    sheet = models.CharField(max_length=120)
    checkpoint = models.CharField(max_length=80)
    run = models.ForeignKey("runs.Run", null=True, on_delete=models.SET_NULL, related_name="checkpoint_passes")
    passed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["passed_at"]
        constraints = [models.UniqueConstraint(fields=["user", "sheet", "checkpoint"], name="checkpoint_passed_once")]

    def __str__(self):
        return f"{self.user} passed {self.sheet}#{self.checkpoint}"


class Answer(models.Model):
    """A student's answer to a sheet's question, for the instructor to read."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="answers")
    sheet = models.CharField(max_length=120)
    checkpoint = models.CharField(max_length=80)
    text = models.TextField(max_length=5000)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["updated_at"]
        constraints = [models.UniqueConstraint(fields=["user", "sheet", "checkpoint"], name="one_answer_per_question")]

    def __str__(self):
        return f"{self.user} on {self.sheet}#{self.checkpoint}"
