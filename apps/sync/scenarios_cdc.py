"""Scenarios of binlog change data capture, on two dedicated servers."""

SCENARIOS = ()
