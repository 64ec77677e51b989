"""Scenarios of the CDC applier: crashes around its offset, and parallel appliers."""

SCENARIOS = ()
