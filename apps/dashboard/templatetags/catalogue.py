"""Filters for the lab catalogue: the home page's cards, the lab pages' index and texts, the
history's compare picker."""

import re
from itertools import groupby

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from apps.runs.models import Run

register = template.Library()

# `name` in a lab's or scenario's text means code: a scenario, a parameter, a command.
BACKTICKED = re.compile(r"`([^`\n]+)`")
# The end of a sentence: a stop, then space, then what starts the next one.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`(])")


@register.filter
def inline_code(text: str) -> SafeString:
    """The text, escaped, with each `x` shown as <code>x</code>. Escaping comes first, so nothing in
    the text itself can become markup."""
    return mark_safe(BACKTICKED.sub(r"<code>\1</code>", escape(text)))


@register.filter
def lead_sentence(text: str) -> str:
    """The explanation's first sentence: what the lab teaches, in one line."""
    return SENTENCE_END.split(text, maxsplit=1)[0]


@register.filter
def after_lead(text: str) -> str:
    """The explanation after its first sentence (empty when it has only one)."""
    parts = SENTENCE_END.split(text, maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


@register.filter
def comparable_runs(runs) -> list[tuple[str, list]]:
    """The runs grouped by lab, labs in name order, each lab's runs newest first, keeping only labs
    with two runs or more: only two runs of one lab can be compared."""
    ordered = sorted(runs, key=lambda run: (run.lab, -run.pk))
    groups = [(lab, list(group)) for lab, group in groupby(ordered, key=lambda run: run.lab)]
    return [(lab, group) for lab, group in groups if len(group) >= 2]


@register.simple_tag(takes_context=True)
def recent_runs(context, limit: int = 50) -> list:
    """The runs the viewer may see, newest first: what the compare page offers when it cannot
    show the pair it was asked for."""
    return list(Run.visible_runs(context["request"].user)[:limit])
