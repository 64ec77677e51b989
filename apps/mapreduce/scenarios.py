from apps.runs.registry import Assets, Caption, Fault, Invariant, Lab, Param, Scenario, register

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


def scenario(name, title, summary, job, mode="plain", duration_s=None, watch="", captions=(), **kw):
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
        watch=watch,
        captions=captions,
    )


def task_caption(text, **data):
    return Caption(text, "state", data={"type": "task", **data})


OUTPUT_RIGHT = Caption(
    "The output equals a sequential reference the checker computed from the same input.",
    "check",
    "output_matches_reference: held",
)
COUNTED_ONCE = Caption(
    "Every task has exactly one committed attempt, and every reducer read each map's output once.",
    "check",
    "each_task_counted_once: held",
)


def job_captions(map_text, output_text):
    """The narration of one job run once: its phases in order, then the checks."""
    return (
        Caption(
            "The coordinator cuts the input into M splits, one per map task.",
            "phase",
            data={"name": "split", "state": "begin"},
        ),
        Caption(map_text, "phase", data={"name": "map", "state": "begin"}),
        task_caption(
            "A map attempt committed: its partitions in Redis are the ones the reducers will read.",
            kind="map",
            state="completed",
        ),
        Caption(
            "Every map task has committed: the reduce tasks start.", "phase", data={"name": "reduce", "state": "begin"}
        ),
        Caption("A reducer fetches its partition of one map's output from Redis: the shuffle.", "msg", " <- "),
        task_caption("A reduce task committed its part of the output.", kind="reduce", state="completed"),
        Caption(output_text, "state", data={"type": "output"}),
        OUTPUT_RIGHT,
        COUNTED_ONCE,
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
                watch="Watch the task grid: map tasks go idle, in progress, completed on the workers, and the "
                "reducers start only once every map has committed.",
                captions=job_captions(
                    "Each map task turns its split into (word, 1) pairs, summed per task and partitioned by "
                    "a hash of the word mod R.",
                    "The output, read back from Redis: a count for every word, the most frequent first.",
                ),
            ),
            scenario(
                "inverted-index",
                "Inverted index",
                "For every word of the Python standard library's sources, the sorted list of files (documents) "
                "it appears in.",
                "inverted-index",
                input="python-stdlib",
                duration_s=14,
                watch="Watch the shuffle: each reducer fetches its partition from every map's output before it can "
                "build the sorted file list of each of its words.",
                captions=job_captions(
                    "Each map task emits (word, file) for every word of its split, partitioned by a hash of the word.",
                    "The output: for every word, the sorted list of files it appears in; the most widespread first.",
                ),
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
                watch="Watch the map tasks do the work: each keeps only the lines that match, so the shuffle carries "
                "just the matches and the reduce passes them through.",
                captions=job_captions(
                    "Each map task emits every line of its split that matches the pattern, keyed by file:line.",
                    "The output: every matching line; the chart counts them per file.",
                ),
            ),
            scenario(
                "log-top-urls",
                "Top URLs of an access log",
                "Requests per URL of an access log, and the most requested." + GENERATED_LOG,
                "log-top-urls",
                input="access-log",
                duration_s=10,
                watch="Watch the counts: each map counts the requests per URL of its part of the log, and a few "
                "popular URLs dominate the output.",
                captions=job_captions(
                    "Each map task emits (URL, 1) for every request line of its split, summed per task.",
                    "The output: requests per URL, the most requested first.",
                ),
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
                watch="Watch the task grid for attempts that die or stall: the coordinator notices a stopped "
                "heartbeat or a timeout and runs the task again, and only one attempt per task is committed.",
                captions=(
                    Caption(
                        "The seeded schedule: these first attempts will kill their own worker or stall past the timeout.",
                        "log",
                        "fault schedule:",
                    ),
                    Caption(
                        "Map tasks go out to the workers, each attempt heart-beating while it runs.",
                        "phase",
                        data={"name": "map", "state": "begin"},
                    ),
                    task_caption(
                        "This attempt SIGKILLed its own worker process mid-task; what it wrote is never committed.",
                        state="failed",
                    ),
                    Caption(
                        "No heartbeat from this worker: the coordinator declares it dead and runs its task again.",
                        "state",
                        data={"type": "worker", "state": "dead"},
                    ),
                    task_caption(
                        "This attempt ran past the task timeout: the coordinator runs the task again elsewhere.",
                        state="timed_out",
                    ),
                    task_caption(
                        "The second attempt committed: the task counts once, whatever the first one wrote.",
                        state="completed",
                        attempt=2,
                    ),
                    task_caption(
                        "The stalled first attempt finished after the task was committed: its output is ignored.",
                        state="ignored",
                    ),
                    Caption(
                        "Every task committed exactly once, despite the kills and the stalls.",
                        "check",
                        "each_task_counted_once: held",
                    ),
                    Caption(
                        "The output is still right: equal to the sequential reference.",
                        "check",
                        "output_matches_reference: held",
                    ),
                ),
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
                watch="Watch the slow worker in both rounds: without backup tasks the job waits for its last tasks; "
                "with them, an idle worker runs a copy and wins.",
                captions=(
                    Caption(
                        "Round 1, without backup tasks: one worker is slow, and the job cannot end before its tasks do.",
                        "log",
                        "round 1: backup tasks off",
                    ),
                    Caption(
                        "Round 2, with backup tasks: near the end, idle workers run copies of the tasks still in progress.",
                        "log",
                        "round 2: backup tasks on",
                    ),
                    task_caption(
                        "A backup copy of a slow task starts on an idle worker; the first attempt to finish wins.",
                        state="in_progress",
                        backup=True,
                    ),
                    task_caption("The backup copy finished first and committed.", state="completed", backup=True),
                    task_caption("The straggler's own attempt finished later: its output is ignored.", state="ignored"),
                    Caption(
                        "The two job times side by side: the backup tasks cut what the straggler cost.",
                        "state",
                        data={"type": "comparison"},
                    ),
                    OUTPUT_RIGHT,
                    COUNTED_ONCE,
                ),
            ),
            scenario(
                "no-combiner",
                "With and without a combiner",
                "Word count twice on the same input: with a combiner each map sends one (word, count) per "
                "word; without it, one (word, 1) per occurrence. The bytes shuffled, side by side.",
                "wordcount",
                mode="no-combiner",
                duration_s=18,
                watch="Watch the bytes shuffled: the same word count runs with and without a combiner, and the "
                "comparison at the end puts the two side by side.",
                captions=(
                    Caption(
                        "Round 1, with the combiner: each map task sums its own (word, 1) pairs before the shuffle.",
                        "log",
                        "round 1: combiner on",
                    ),
                    Caption(
                        "The reducers fetch one (word, count) per word and map task.",
                        "phase",
                        data={"name": "reduce", "state": "begin", "round": 1},
                    ),
                    Caption(
                        "Round 2, without it: every occurrence of every word crosses the shuffle as its own (word, 1).",
                        "log",
                        "round 2: combiner off",
                    ),
                    Caption(
                        "The reducers now fetch one record per occurrence instead of one per word and map task.",
                        "phase",
                        data={"name": "reduce", "state": "begin", "round": 2},
                    ),
                    Caption(
                        "Bytes shuffled, side by side: the combiner sends a fraction of what the plain job sends.",
                        "state",
                        data={"type": "comparison"},
                    ),
                    Caption(
                        "Both rounds' output equals the reference: the combiner changes the cost, not the result.",
                        "check",
                        "output_matches_reference: held",
                    ),
                    COUNTED_ONCE,
                ),
            ),
        ],
        run_page=Assets(css=("mapreduce/css/mapreduce.css",), js=("mapreduce/js/mapreduce.js",)),
        lab_page=Assets(js=("mapreduce/js/upload.js",)),
        field_partials={"upload": "mapreduce/upload_field.html"},
        urls="apps.mapreduce.urls",
    )
)
