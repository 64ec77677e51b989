"""What the platform tells other apps about runs, as Django signals (receivers connect in their
AppConfig.ready()).

run_finished(sender=Run, run=<Run>) is sent by the process that ran the run (a worker, or
`manage.py lab run`) once the run's end is stored: a receiver acts there, never in a web process.
"""

from django.dispatch import Signal

run_finished = Signal()
