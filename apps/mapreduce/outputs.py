"""Where a MapReduce run's output is kept once its job is over: part files under the data folder,
written by the coordinator (in a Celery worker) and only read by the web processes.

    <DISTLAB_UPLOAD_DIR>/mapreduce/output/run<id>/part-r-00000 ...
"""

from pathlib import Path

from .uploads import root


def output_folder(run_id: int) -> Path:
    if not isinstance(run_id, int) or isinstance(run_id, bool) or run_id <= 0:
        raise ValueError(f"not a run id: {run_id!r}")
    return root() / "output" / f"run{run_id}"
