"""Dedicated lab nodes: the node supervisor, its TCP proxies and the faults they inject.

Plain Python except `conf.py` (the Django glue) and `apps.py`.
"""
