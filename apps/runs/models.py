from django.conf import settings
from django.db import models

# Other platform apps may show a user runs they do not own (a class's shared runs): each entry is a
# function user -> Q over Run, registered from its AppConfig.ready(). Seeing is never steering.
RUN_ACCESS = []


class Run(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PAUSED = "paused"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Verdict(models.TextChoices):
        PASS = "pass"
        FAIL = "fail"
        UNKNOWN = "unknown"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.PAUSED)
    FINISHED = (Status.DONE, Status.FAILED, Status.CANCELLED)

    # Null for runs started from the command line.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    lab = models.CharField(max_length=40)
    scenario = models.CharField(max_length=80)
    params = models.JSONField(default=dict)
    seed = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    verdict = models.CharField(max_length=8, choices=Verdict.choices, blank=True)
    expected = models.CharField(max_length=8, choices=Verdict.choices, blank=True)
    invariants = models.JSONField(default=list, blank=True)
    failure_reason = models.TextField(blank=True)
    # Steps per second while running; 0 is as fast as the servers answer.
    speed = models.FloatField(default=0)
    events_count = models.PositiveIntegerField(default=0)
    # The step boundary the run last reached (where a paused run waits).
    step = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Kept data (apps/runs/kept.py): asked for at launch; `kept` holds what was left on the shared
    # nodes and the run's own read-only credentials until the data is dropped.
    keep = models.BooleanField(default=False)
    kept = models.JSONField(default=dict, blank=True)
    kept_until = models.DateTimeField(null=True, blank=True)
    dropped_at = models.DateTimeField(null=True, blank=True)
    # Set on runs brought back from an export (apps/runs/transfer.py): where they came from. Such a
    # run is finished from the start, so it never executes and takes no controls.
    imported_from = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["owner", "status"]),
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["keep", "dropped_at", "kept_until"]),
        ]

    def __str__(self):
        return f"run {self.pk} {self.lab}/{self.scenario}"

    @property
    def is_finished(self):
        return self.status in self.FINISHED

    @property
    def is_imported(self):
        return self.imported_from is not None

    def visible_to(self, user):
        if not (user and user.is_authenticated):
            return False
        if user.is_staff or self.owner_id == user.pk:
            return True
        return bool(RUN_ACCESS) and Run.visible_runs(user).filter(pk=self.pk).exists()

    def controllable_by(self, user):
        """Steering a run (pause, step, faults, stop, drop) is its owner's, or staff's: a run shared
        with someone is theirs to watch, not to drive."""
        return bool(user and user.is_authenticated and (user.is_staff or self.owner_id == user.pk))

    @classmethod
    def visible_runs(cls, user):
        runs = cls.objects.select_related("owner")
        if user.is_staff:
            return runs
        seen = models.Q(owner=user)
        for grant in RUN_ACCESS:
            seen |= grant(user)
        return runs.filter(seen).distinct() if RUN_ACCESS else runs.filter(seen)

    @classmethod
    def holding_data(cls):
        """Runs whose data is, or will be, kept on the shared nodes: asked to keep and still going,
        or kept and not dropped yet."""
        going_or_kept = models.Q(status__in=cls.ACTIVE) | models.Q(kept_until__isnull=False)
        return cls.objects.filter(going_or_kept, keep=True, dropped_at__isnull=True)


class Event(models.Model):
    """One recorded step of a run, schema v1 of DESIGN.md; `seq` runs 1, 2, 3 ... with no gaps."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    t = models.FloatField()
    kind = models.CharField(max_length=12)
    actor = models.CharField(max_length=80, blank=True)
    to = models.CharField(max_length=80, blank=True)
    label = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="event_seq_unique_per_run")]

    def __str__(self):
        return f"{self.run_id}#{self.seq} {self.kind} {self.label}"

    def as_dict(self):
        event = {"v": 1, "run": self.run_id, "seq": self.seq, "t": self.t, "kind": self.kind, "actor": self.actor}
        if self.to:
            event["to"] = self.to
        event["label"] = self.label
        event["data"] = self.data
        return event
