"""The classroom: classes and their members, runs shared with a class, presentations, and each
student's progress through the lab sheets (the sheets themselves are Markdown files in the labs'
folders, apps/classroom/sheets.py)."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.utils import timezone

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
        verbose_name = "class"
        verbose_name_plural = "classes"

    def __str__(self):
        return self.name

    def taught_by(self, user):
        return bool(user and user.is_authenticated and self.instructors.filter(pk=user.pk).exists())

    def regenerate_code(self):
        """A fresh join code: the old one stops working (it was read out, or leaked)."""
        while True:
            code = new_join_code()
            if not Classroom.objects.filter(join_code=code).exists():
                break
        self.join_code = code
        self.save(update_fields=["join_code"])
        return code

    @classmethod
    def of(cls, user):
        """The classes a user belongs to, as a student or an instructor."""
        return cls.objects.filter(models.Q(memberships__user=user) | models.Q(instructors=user)).distinct()

    @classmethod
    def visible_to(cls, user):
        """The classes whose page a user may open: their own; staff administer every class."""
        return cls.objects.all() if user.is_staff else cls.of(user)

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


class FailedJoin(models.Model):
    """A join attempt with a code no class has. Counted per user over the last hour to stop anyone
    guessing codes; kept in the control database, so every web process counts the same attempts."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="failed_joins")
    code = models.CharField(max_length=32)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["user", "at"])]

    def __str__(self):
        return f"{self.user} tried {self.code!r}"


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
        verbose_name_plural = "checkpoint passes"
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


# Joining ---------------------------------------------------------------------------------------

JOIN_FAILURES_PER_HOUR = 10


class JoinRefused(Exception):
    def __init__(self, message, status=400):
        super().__init__(message)
        self.message, self.status = message, status


def normalise_code(raw):
    """What a student typed, as codes are stored: case and spaces do not matter."""
    return "".join(str(raw or "").split()).upper()


def join_class(user, raw_code):
    """(classroom, joined now?) for the class whose code the user gave; JoinRefused (with the
    message to show) for a wrong code, or for any code once the user has tried too many wrong ones."""
    code = normalise_code(raw_code)
    if not code:
        raise JoinRefused("enter the join code your instructor gave you")
    now = timezone.now()
    with transaction.atomic():
        # The user's row lock takes their attempts one at a time, so parallel guesses cannot all
        # pass the count before any of them is recorded.
        get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
        failures = FailedJoin.objects.filter(user=user, at__gt=now - timedelta(hours=1))
        if failures.count() >= JOIN_FAILURES_PER_HOUR:
            oldest = failures.order_by("at").values_list("at", flat=True).first()
            again = oldest + timedelta(hours=1)
            refused = JoinRefused(
                f"too many wrong join codes ({JOIN_FAILURES_PER_HOUR} in the last hour): no code is taken "
                f"from you until {again:%H:%M} UTC; ask your instructor to check the code",
                status=429,
            )
        else:
            classroom = Classroom.objects.filter(join_code=code).first()
            if classroom is None:
                FailedJoin.objects.create(user=user, code=code[:32])
                left = JOIN_FAILURES_PER_HOUR - failures.count()
                refused = JoinRefused(
                    f"no class has the join code {code[:32]}; check it with your instructor "
                    f"({left} more wrong code{'s' if left != 1 else ''} allowed this hour)"
                )
            else:
                refused = None
                joined = False
                if not classroom.taught_by(user):
                    _, joined = Membership.objects.get_or_create(classroom=classroom, user=user)
    if refused:
        raise refused
    return classroom, joined


def share_run(classroom, run, user):
    """(SharedRun, shared now?): the class's members may watch the run from now on."""
    return SharedRun.objects.get_or_create(classroom=classroom, run=run, defaults={"shared_by": user})
