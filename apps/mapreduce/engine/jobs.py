"""The MapReduce jobs: a map function over one chunk of a document, a combine function (associative:
it merges partial values, so the combiner and the reducer share it), and a sequential reference
written independently of map/reduce, to check the distributed output against.

Plain Python. Every key is a str and every value JSON-serialisable, as they cross Redis as JSON.
"""

import heapq
import re
import zlib
from collections import Counter, defaultdict

import re2

WORD = re.compile(r"\w+")
# One line of the generated access log (combined log format); the URL is the path requested.
LOG_LINE = re.compile(r'^\S+ \S+ \S+ \[[^\]]*\] "(?:GET|POST|HEAD|PUT|DELETE) (\S+) [^"]*" (\d{3}) ')
PATTERN_MAX = 200


def partition(key, reduces):
    """A stable hash of the key mod R: the same on every worker and in every process (unlike hash())."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % reduces


def partition_combined(output, reduces):
    """A combined map output {key: value} cut into R dicts by `partition` (inlined: it runs once per
    distinct key of the split)."""
    parts = [{} for _ in range(reduces)]
    crc32 = zlib.crc32
    for key, value in output.items():
        parts[crc32(key.encode("utf-8", "surrogatepass")) % reduces][key] = value
    return parts


def items_of(map_output):
    """The (key, value) pairs of one map output for a partition: a dict when it was combined (each
    key once), a list of pairs when it was not."""
    return map_output.items() if isinstance(map_output, dict) else map_output


def _re2_options():
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the user's field error, not a line on stderr
    return options


RE2_OPTIONS = _re2_options()


def compile_pattern(pattern):
    """The grep pattern, compiled by RE2, whose matching time is linear in the line's length: a
    user's pattern such as `(a+)+$` cannot hold a shared worker for hours, as backtracking would.
    ValueError with a message a user can act on for a pattern RE2 refuses (backreferences and
    lookaround, which only a backtracking engine offers, among them)."""
    if not pattern:
        raise ValueError("give a regular expression to search for")
    if len(pattern) > PATTERN_MAX:
        raise ValueError(f"at most {PATTERN_MAX} characters")
    try:
        return re2.compile(pattern, options=RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else ""
        reason = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise ValueError(f"not a regular expression RE2 accepts: {reason}") from None


class Job:
    name = ""
    title = ""
    value_label = "value"  # what the bar chart's bars measure

    def __init__(self, **options):
        self.options = options

    def pairs(self, doc, first_line, text):
        """The map function: (key, value) pairs for one chunk, one record (line) at a time."""
        raise NotImplementedError

    def combine(self, values):
        """Merges values of one key (partial results) into one; associative and commutative."""
        raise NotImplementedError

    def combined(self, doc, first_line, text):
        """The map output of a chunk with the combiner applied: {key: value}."""
        out = {}
        for key, value in self.pairs(doc, first_line, text):
            out[key] = self.combine([out[key], value]) if key in out else value
        return out

    def accumulate(self, acc, doc, first_line, text):
        """Folds a chunk's combined map output into `acc` (the combiner across a map task's chunks)."""
        for key, value in self.combined(doc, first_line, text).items():
            acc[key] = self.combine([acc[key], value]) if key in acc else value
        return acc

    def reduce(self, key, values):
        return self.combine(values)

    def reduce_partition(self, inputs):
        """The reduce of one partition: {key: value} from the map outputs' lists of pairs."""
        groups = defaultdict(list)
        for pairs in inputs:
            for key, value in items_of(pairs):
                groups[key].append(value)
        reduce = self.reduce
        return {key: reduce(key, values) for key, values in groups.items()}

    def reference(self, chunks):
        """The job's output computed sequentially in one process: {key: value}."""
        raise NotImplementedError

    def top(self, output, n=20):
        """What the bar chart shows: [[label, number], ...], largest first."""
        return self.merge_tops([self.partial_top(output, n)], n)

    def partial_top(self, output, n=20):
        """A reducer's share of the top, computed where its output is: partitions hold disjoint
        keys, so the top n of every partition contain the overall top n."""
        return [
            [k, self.measure(v)]
            for k, v in heapq.nsmallest(n, output.items(), key=lambda kv: (-self.measure(kv[1]), kv[0]))
        ]

    def merge_tops(self, partials, n=20):
        items = [item for partial in partials for item in partial]
        return [list(kv) for kv in heapq.nsmallest(n, items, key=lambda kv: (-kv[1], kv[0]))]

    def measure(self, value):
        return value


class Sum(Job):
    """Jobs whose values are counts: the combiner and the reducer add them up."""

    def combine(self, values):
        return sum(values)

    def reduce_partition(self, inputs):
        totals = {}
        get = totals.get
        for pairs in inputs:
            if not totals and isinstance(pairs, dict):
                totals.update(pairs)
                continue
            for key, value in items_of(pairs):
                totals[key] = get(key, 0) + value
        return totals


class WordCount(Sum):
    name = "wordcount"
    title = "Word count"
    value_label = "occurrences"

    def pairs(self, doc, first_line, text):
        for word in WORD.findall(text.lower()):
            yield word, 1

    def combined(self, doc, first_line, text):
        return Counter(WORD.findall(text.lower()))

    def accumulate(self, acc, doc, first_line, text):
        if not isinstance(acc, Counter):
            acc = Counter(acc)
        acc.update(WORD.findall(text.lower()))  # counted in C, as the reference counts
        return acc

    def reference(self, chunks):
        counts = Counter()
        for _doc, _first, text in chunks:
            counts.update(WORD.findall(text.lower()))
        return dict(counts)


class InvertedIndex(Job):
    name = "inverted-index"
    title = "Inverted index"
    value_label = "documents"

    def pairs(self, doc, first_line, text):
        for line in text.splitlines():
            for word in set(WORD.findall(line.lower())):
                yield word, [doc]

    def combine(self, values):
        if len(values) == 1:
            return values[0]
        return sorted(set().union(*values))

    def combined(self, doc, first_line, text):
        return {word: [doc] for word in set(WORD.findall(text.lower()))}

    def reference(self, chunks):
        index = defaultdict(set)
        for doc, _first, text in chunks:
            for word in WORD.findall(text.lower()):
                index[word].add(doc)
        return {word: sorted(docs) for word, docs in index.items()}

    def measure(self, value):
        return len(value)


class Grep(Job):
    """Distributed grep: the map emits each matching line under "document:line number"; the
    reduce is the identity (each key comes from exactly one line)."""

    name = "grep"
    title = "Distributed grep"
    value_label = "matching lines"

    def __init__(self, pattern="", **options):
        super().__init__(pattern=pattern, **options)
        self.regex = compile_pattern(pattern)

    def pairs(self, doc, first_line, text):
        search = self.regex.search
        for i, line in enumerate(text.splitlines()):
            if search(line):
                yield f"{doc}:{first_line + i + 1}", line

    def combine(self, values):
        return values[0]

    def reference(self, chunks):
        out = {}
        for doc, first, text in chunks:
            for i, line in enumerate(text.splitlines()):
                if self.regex.search(line):
                    out[f"{doc}:{first + i + 1}"] = line
        return out

    def partial_top(self, output, n=20):
        # A document's lines are spread over every partition: each reducer sends all its counts.
        return [[doc, count] for doc, count in Counter(key.rsplit(":", 1)[0] for key in output).items()]

    def merge_tops(self, partials, n=20):
        per_doc = Counter()
        for partial in partials:
            for doc, count in partial:
                per_doc[doc] += count
        return [[k, v] for k, v in heapq.nsmallest(n, per_doc.items(), key=lambda kv: (-kv[1], kv[0]))]


class LogTopUrls(Sum):
    name = "log-top-urls"
    title = "Top URLs of an access log"
    value_label = "requests"

    def pairs(self, doc, first_line, text):
        match = LOG_LINE.match
        for line in text.splitlines():
            m = match(line)
            if m:
                yield m.group(1), 1

    def combined(self, doc, first_line, text):
        return Counter(k for k, _ in self.pairs(doc, first_line, text))

    def reference(self, chunks):
        counts = Counter()
        for _doc, _first, text in chunks:
            for line in text.splitlines():
                m = LOG_LINE.match(line)
                if m:
                    counts[m.group(1)] += 1
        return dict(counts)


JOBS = {job.name: job for job in (WordCount, InvertedIndex, Grep, LogTopUrls)}


def make_job(name, pattern=""):
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r} (jobs: {', '.join(JOBS)})")
    return JOBS[name](pattern=pattern) if name == "grep" else JOBS[name]()
