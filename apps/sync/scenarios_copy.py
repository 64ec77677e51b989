"""Scenarios of the chunked full copy and its retries."""

SCENARIOS = ()
