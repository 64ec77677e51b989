"""What every locks run's command log must look like, whichever lock sent the commands."""

CMD_FIELDS = {"node", "command", "ok", "result", "ms", "error"}


def assert_one_cmd_shape(events):
    """Every real command the run sent is one `cmd` event in the engine API's one shape, failed
    ones included; returns those events."""
    commands = [e for e in events if e["kind"] == "cmd"]
    assert commands
    for e in commands:
        data = e["data"]
        assert set(data) == CMD_FIELDS, data
        assert (e["to"], e["label"]) == (data["node"], data["command"])
        assert data["ok"] is (data["error"] is None) and isinstance(data["ms"], float)
    return commands
