"""How many attempts ran at once, the measurement shown beside the verdict, from the workers' own
start and end times."""

from apps.mapreduce.engine.output import peak_running


def test_it_counts_the_attempts_running_at_the_same_time():
    assert peak_running([(0, 10), (5, 15), (6, 7), (20, 30)]) == 3
    assert peak_running([]) == 0


def test_an_attempt_that_starts_as_another_ends_did_not_run_beside_it():
    # A worker restarted after a SIGKILL, or one machine busy elsewhere: the job ran one at a time.
    assert peak_running([(0, 10), (10, 20), (20, 25)]) == 1
