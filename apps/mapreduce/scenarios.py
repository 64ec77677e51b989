from apps.runs.registry import Assets, Fault, Invariant, Lab, Param, Scenario, register

from . import checkers
from .engine import coordinator
from .engine.corpus import INPUTS
from .engine.jobs import PATTERN_MAX, compile_pattern

INVARIANTS = (
    Invariant(
        "output_matches_reference",
        "the committed output, read back from Redis, equals a sequential reference computed by the checker "
        "from the input documents themselves",
        checkers.output_matches_reference,
    ),
    Invariant(
        "each_task_counted_once",
        "every map and reduce task has exactly one committed attempt, read exactly once by every reducer",
        checkers.each_task_counted_once,
    ),
)


def params(input="licenses", size_limit=3_000_000, maps=6, reduces=3, timeout_ms=10_000, extra=()):
    return (
        Param("input", "choice", input, "the input: a built-in corpus, or a file you uploaded", choices=INPUTS),
        Param("upload", "str", "", "the token of your uploaded file (when input is upload)"),
        Param("maps", "int", maps, "M, the number of map tasks (input splits)", min=1, max=64),
        Param("reduces", "int", reduces, "R, the number of reduce tasks (partitions)", min=1, max=16),
        Param("workers", "int", 2, "how many of the running MapReduce workers to use", min=1, max=16),
        Param("combiner", "bool", True, "combine each map task's output before the shuffle"),
        Param("backup_tasks", "bool", False, "run backup copies of the last slow tasks on idle workers"),
        Param(
            "size_limit", "int", size_limit, "how much of the built-in corpus to read (bytes)", min=1000, max=50_000_000
        ),
        Param(
            "task_timeout_ms",
            "int",
            timeout_ms,
            "a task not finished after this long is run again",
            min=500,
            max=120_000,
        ),
        *extra,
    )


def check_params(clean):
    errors = {}
    if clean["input"] == "upload" and not clean["upload"].strip():
        errors["upload"] = ["required when input is upload: upload a text file and give its token"]
    if "pattern" in clean:
        try:
            compile_pattern(clean["pattern"])
        except ValueError as exc:
            errors["pattern"] = [str(exc)]
    return errors


def check_owner(owner, clean):
    """An upload may be used only by the user who uploaded it (the command line may use any)."""
    if clean["input"] != "upload":
        return {}
    from .uploads import describe, owned_by

    token = clean["upload"]
    if owned_by(token, owner):
        return {}
    try:
        describe(token)
    except ValueError as exc:
        return {"upload": [str(exc)]}
    return {"upload": ["this upload belongs to another user"]}


def engine_for(job, mode="plain"):
    def run(ctx):
        from .outputs import output_folder
        from .tasks import CeleryDispatcher

        upload = None
        if ctx.params["input"] == "upload":
            from .uploads import read_text

            upload = read_text(ctx.params["upload"])
        return coordinator.run(
            ctx, CeleryDispatcher(), job_name=job, mode=mode, upload=upload, output_dir=output_folder(ctx.run_id)
        )

    run.__name__ = f"mapreduce_{job}_{mode}".replace("-", "_")
    return run


# The most workers a run may use (the `workers` parameter's maximum); a run offers its own.
WORKER_NAMES = tuple(f"w{i}" for i in range(1, 17))
KILL_WORKER = Fault(
    "kill",
    WORKER_NAMES,
    "SIGKILL the worker process running the task (an idle worker dies in its next one); the task runs again",
    numbered=("w", "workers"),
)


def scenario(name, title, summary, job, mode="plain", duration_s=None, **kw):
    """`duration_s`: seconds a run with the default parameters took at 2 steps/s (one step a wave of tasks)."""
    extra = kw.pop("extra", ())
    return Scenario(
        name=name,
        title=title,
        summary=summary,
        engine=engine_for(job, mode),
        params=params(extra=extra, **kw),
        invariants=INVARIANTS,
        cross_check=check_params,
        owner_check=check_owner,
        faults=(KILL_WORKER,),
        duration_s=duration_s,
    )


GENERATED_LOG = (
    " The access log is generated from the seed (its URLs are the standard library's module paths, "
    "their popularity a Zipf law): it is not a real server's log."
)

LAB = register(
    Lab(
        name="mapreduce",
        title="MapReduce",
        explanation=(
            "MapReduce as the 2004 paper describes it, on real Celery workers. A coordinator cuts the "
            "input into M splits; each map task turns its split into key/value pairs, partitioned by a "
            "stable hash of the key mod R and written to Redis, where a reducer on any host can read "
            "them. R reduce tasks each fetch their partition from every map's output (the shuffle), "
            "group by key and reduce. Tasks go idle -> in progress -> completed; a task whose worker "
            "died (its heartbeat stopped) or that is too slow is run again, and exactly one attempt of "
            "each task is committed, so a late or duplicate output is ignored and no partial output is "
            "ever read. A combiner shrinks what is shuffled; backup tasks beat stragglers. Every run "
            "checks its output against a sequential reference computed in the same run."
        ),
        scenarios=[
            scenario(
                "wordcount",
                "Word count",
                "Counts every word of the licence texts and copyright files the system ships.",
                "wordcount",
                duration_s=11,
            ),
            scenario(
                "inverted-index",
                "Inverted index",
                "For every word of the Python standard library's sources, the sorted list of files (documents) "
                "it appears in.",
                "inverted-index",
                input="python-stdlib",
                duration_s=14,
            ),
            scenario(
                "grep",
                "Distributed grep",
                "Every line of the Python standard library's sources that matches a regular expression, "
                "as document:line.",
                "grep",
                input="python-stdlib",
                extra=(
                    Param(
                        "pattern",
                        "str",
                        r"\bself\.\w+ = ",
                        f"a regular expression in RE2 syntax, no backreferences or lookaround (at most {PATTERN_MAX} characters)",
                    ),
                ),
                duration_s=10,
            ),
            scenario(
                "log-top-urls",
                "Top URLs of an access log",
                "Requests per URL of an access log, and the most requested." + GENERATED_LOG,
                "log-top-urls",
                input="access-log",
                duration_s=10,
            ),
            scenario(
                "worker-crash",
                "Workers die and stall",
                "A seeded schedule makes some task attempts SIGKILL their own worker process mid-task (after "
                "writing part of their output) and others stall past the task timeout. The coordinator "
                "notices (a heartbeat that stops, a timeout) and runs those tasks again; the output is "
                "still right.",
                "wordcount",
                mode="worker-crash",
                timeout_ms=2500,
                extra=(
                    Param(
                        "kill_percent", "int", 20, "the share of first attempts that kill their worker", min=0, max=100
                    ),
                    Param("stall_percent", "int", 15, "the share of first attempts that stall", min=0, max=100),
                ),
                duration_s=15,
            ),
            scenario(
                "straggler",
                "A straggler, with and without backup tasks",
                "One worker is slow (it sleeps on every record). The job runs twice on the same input: "
                "without backup tasks it waits for the straggler; with them, an idle worker runs a copy of "
                "the last slow tasks and the first to finish wins. Both times are shown.",
                "wordcount",
                mode="straggler",
                size_limit=300_000,
                extra=(
                    Param(
                        "slow_ms_per_record", "float", 1.0, "how long the slow worker sleeps per record", min=0, max=50
                    ),
                ),
                duration_s=20,
            ),
            scenario(
                "no-combiner",
                "With and without a combiner",
                "Word count twice on the same input: with a combiner each map sends one (word, count) per "
                "word; without it, one (word, 1) per occurrence. The bytes shuffled, side by side.",
                "wordcount",
                mode="no-combiner",
                duration_s=18,
            ),
        ],
        run_page=Assets(css=("mapreduce/css/mapreduce.css",), js=("mapreduce/js/mapreduce.js",)),
        lab_page=Assets(js=("mapreduce/js/upload.js",)),
        field_partials={"upload": "mapreduce/upload_field.html"},
        urls="apps.mapreduce.urls",
    )
)
