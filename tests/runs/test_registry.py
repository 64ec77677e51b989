from apps.runs.registry import LABS, Param, Scenario, get_scenario, verdict_of


def scenario():
    return Scenario(
        name="s",
        title="S",
        summary="",
        engine=lambda ctx: None,
        params=(
            Param("rounds", "int", 5, min=1, max=10),
            Param("ratio", "float", 0.5, min=0, max=1),
            Param("fencing", "bool", True),
            Param("mode", "choice", "fast", choices=("fast", "safe")),
        ),
    )


def test_it_fills_defaults_and_converts_strings_from_the_command_line():
    clean, errors = scenario().validate({"rounds": "7", "fencing": "false"})
    assert errors == {}
    assert clean == {"rounds": 7, "ratio": 0.5, "fencing": False, "mode": "fast"}


def test_it_gives_a_message_per_bad_field():
    _, errors = scenario().validate({"rounds": 11, "ratio": "lots", "mode": "reckless", "colour": "red"})
    assert errors == {
        "rounds": ["must be at most 10"],
        "ratio": ["must be a number"],
        "mode": ["must be one of fast, safe"],
        "colour": ["unknown parameter (known: rounds, ratio, fencing, mode)"],
    }


def test_integers_refuse_fractions_and_booleans():
    _, errors = scenario().validate({"rounds": 2.5})
    assert errors == {"rounds": ["must be an integer"]}
    _, errors = scenario().validate({"rounds": True})
    assert errors == {"rounds": ["must be an integer"]}


def test_params_must_be_an_object():
    _, errors = scenario().validate(["rounds", 3])
    assert errors == {"params": ["must be an object of parameter values"]}


def test_lookups_say_what_exists():
    assert "diagnostics" in LABS
    assert get_scenario("diagnostics", "ping").lab == "diagnostics"
    for lab, name, message in (
        ("nope", "ping", "unknown lab 'nope'"),
        ("diagnostics", "pong", "unknown scenario 'pong'"),
    ):
        try:
            get_scenario(lab, name)
        except LookupError as exc:
            assert message in str(exc)
        else:
            raise AssertionError("expected a LookupError")


def test_the_verdict_is_pass_only_when_every_invariant_held():
    assert verdict_of([{"held": True}, {"held": True}]) == "pass"
    assert verdict_of([{"held": True}, {"held": False}]) == "fail"
    assert verdict_of([{"held": True}, {"held": None}]) == "unknown"
    assert verdict_of([]) == "unknown"


def test_a_cross_check_reports_parameters_that_do_not_fit_together():
    sc = scenario()
    sc.cross_check = lambda p: {"ratio": ["must be 0 when fencing is off"]} if not p["fencing"] and p["ratio"] else {}
    assert sc.validate({"fencing": False})[1] == {"ratio": ["must be 0 when fencing is off"]}
    assert sc.validate({"fencing": False, "ratio": 0})[1] == {}
    # Field errors come first: the cross check only sees clean values.
    assert sc.validate({"fencing": "maybe"})[1] == {"fencing": ["must be true or false"]}


def test_numbered_fault_targets_follow_the_runs_own_parameter():
    from apps.runs.registry import Fault

    pause = Fault("pause", tuple(f"c{i}" for i in range(1, 17)), "pause a client", numbered=("c", "clients"))
    sc = scenario()
    sc.params = (*sc.params, Param("clients", "int", 3, min=1, max=16))
    sc.faults = (pause,)
    assert sc.faults_for({"clients": 2}) == [
        {"kind": "pause", "targets": ["c1", "c2"], "where": "c1, c2", "help": "pause a client"}
    ]
    assert sc.fault("pause", "c2", {"clients": 2}) is pause
    assert sc.fault("pause", "c3", {"clients": 2}) is None
    assert sc.describe()["faults"][0]["where"] == "any client, c1 to cN (N = clients)"  # the lab page


def test_every_numbered_fault_counts_by_a_parameter_its_scenario_has():
    for lab in LABS.values():
        for sc in lab.scenarios.values():
            names = {p.name for p in sc.params}
            for f in sc.faults:
                assert f.numbered is None or f.numbered[1] in names, (lab.name, sc.name, f.kind)


def test_a_duration_is_told_at_the_page_pace_for_the_defaults_or_the_runs_own_parameters():
    fixed = Scenario(name="f", title="F", summary="", engine=lambda ctx: None, duration_s=19.6)
    assert fixed.duration() == 20
    assert fixed.duration_text() == "about 20 s at 2 steps/s"
    scaled = scenario()
    scaled.duration_s = lambda p: 1.5 * p["rounds"]
    assert scaled.duration() == 8  # the default 5 rounds
    assert scaled.duration({"rounds": 10}) == 15
    assert scaled.describe()["duration"] == "about 8 s at 2 steps/s"
    # A run recorded with parameters the scenario no longer has gets no figure rather than an error.
    assert scaled.duration_text({"turns": 3}) == ""
    assert Scenario(name="u", title="U", summary="", engine=lambda ctx: None).duration_text() == ""
    slow = Scenario(name="l", title="L", summary="", engine=lambda ctx: None, duration_s=150)
    assert slow.duration_text() == "about 2 min at 2 steps/s"


def test_a_lab_that_tells_one_scenarios_duration_tells_them_all():
    for lab in LABS.values():
        told = {sc.name: sc.duration() for sc in lab.scenarios.values()}
        if any(s is not None for s in told.values()):
            assert None not in told.values(), (lab.name, told)
