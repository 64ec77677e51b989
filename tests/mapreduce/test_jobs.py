"""The jobs' map functions on their own, with no workers: what a user's grep pattern may do."""

from apps.mapreduce.engine.jobs import make_job


def test_a_catastrophic_grep_pattern_on_a_long_line_finishes_with_the_right_matches():
    # A backtracking engine tries 2^n ways to split n a's between the groups before it gives up on
    # the first line; RE2 reads each line once.
    grep = make_job("grep", r"(a+)+$")
    text = "a" * 50_000 + "b\n" + "a" * 50_000 + "\n" + "no match here\n"
    assert [key for key, _ in grep.pairs("long.txt", 10, text)] == ["long.txt:12"]
    assert grep.reference([("long.txt", 10, text)]) == {"long.txt:12": "a" * 50_000}


def test_grep_keeps_the_python_syntax_users_write():
    grep = make_job("grep", r"\bself\.\w+ = ")
    text = "class A:\n    def f(self):\n        self.x = 1\n        myself.y = 2\n"
    assert dict(grep.pairs("a.py", 0, text)) == {"a.py:3": "        self.x = 1"}
