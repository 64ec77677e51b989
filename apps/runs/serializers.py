from datetime import datetime

from django.urls import reverse
from rest_framework import serializers

from . import kept
from .context import ACTIONS
from .launch import InvalidRun, validate
from .models import Run


class RunCreateSerializer(serializers.Serializer):
    lab = serializers.CharField(max_length=40)
    scenario = serializers.CharField(max_length=80)
    params = serializers.DictField(required=False, default=dict)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**62)
    speed = serializers.FloatField(required=False, default=0.0, min_value=0.0, max_value=1000.0)
    keep = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs):
        try:
            _, clean, seed = validate(attrs["lab"], attrs["scenario"], attrs.get("params"), attrs.get("seed"))
        except InvalidRun as exc:
            raise serializers.ValidationError(exc.errors) from None
        attrs["params"], attrs["seed"] = clean, seed
        return attrs


class RunSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    events = serializers.IntegerField(source="events_count", read_only=True)
    url = serializers.SerializerMethodField()
    ws = serializers.SerializerMethodField()
    kept = serializers.SerializerMethodField()
    imported = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "id", "owner", "lab", "scenario", "params", "seed", "status", "verdict", "expected", "invariants",
            "failure_reason", "speed", "step", "events", "created_at", "started_at", "finished_at", "url", "ws",
            "keep", "kept", "imported",
        ]  # fmt: skip
        read_only_fields = fields

    def get_kept(self, run):
        """Kept data's state and, while kept, the commands that inspect it (see apps/runs/kept.py)."""
        info = kept.describe(run)
        if info is None:
            return None
        moment = serializers.DateTimeField()
        return {k: moment.to_representation(v) if isinstance(v, datetime) else v for k, v in info.items()}

    def get_imported(self, run):
        """Where an imported run came from (the exported run's id and times); null for a real run."""
        return run.imported_from

    def get_url(self, run):
        return reverse("run-page", args=[run.pk])

    def get_ws(self, run):
        return f"/ws/runs/{run.pk}/"


class ControlSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=ACTIONS)
    value = serializers.FloatField(required=False, min_value=0.0, max_value=1000.0)
    kind = serializers.CharField(required=False, max_length=40)
    target = serializers.CharField(required=False, max_length=80)

    def validate(self, attrs):
        run = self.context["run"]
        if attrs["action"] == "speed" and "value" not in attrs:
            raise serializers.ValidationError({"value": ["speed needs a value: steps per second, 0 for full speed"]})
        if attrs["action"] == "fault":
            from .registry import get_scenario

            scenario = get_scenario(run.lab, run.scenario)
            kind, target = attrs.get("kind"), attrs.get("target")
            if not kind or not target:
                raise serializers.ValidationError({"kind": ["a fault needs a kind and a target"]})
            fault = scenario.fault(kind, target, run.params)
            if fault is None:
                allowed = ", ".join(f"{f['kind']} on {'/'.join(f['targets'])}" for f in scenario.faults_for(run.params))
                allowed = allowed or "none"
                raise serializers.ValidationError({"kind": [f"not a fault of this scenario (allowed: {allowed})"]})
            attrs["options"] = dict(fault.options)
        return attrs

    def command(self, user):
        command = {"action": self.validated_data["action"], "by": user.get_username()}
        for key in ("value", "kind", "target", "options"):
            if key in self.validated_data:
                command[key] = self.validated_data[key]
        return command
