"""The command line's reference, read from the verbs' own argparse parsers.

The appendix page "The command line" shows :func:`flags_table` for every verb of
:func:`verbs`, so the reference is ``--help`` itself and cannot drift from it. A default
the parser computes on the machine it runs on (``train --workers``: the CPU cores) is
given in words, so the page reads the same on every machine.
"""
from __future__ import annotations

import argparse
import re

from . import VERBS, _parser

__all__ = ["verbs", "flags", "flags_table"]

#: "…: 2 here)" in a help text: a value measured on this machine
_HERE = re.compile(r": \d+ here\)")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def verbs() -> list[tuple[str, str]]:
    """``(verb, what it does)`` for every verb, in the order ``--help`` lists them."""
    parsers = _subparsers()
    return [(name, parsers[name].description or "") for name in VERBS if name in parsers]


def _markdown(text: str) -> str:
    """Flags (``--epochs``) and words with ``<``, ``*`` or ``_`` (paths like
    ``OUT/<name>-seed<S>/``) as code, so that the book's Markdown shows them as typed
    (not ``--`` as a dash, nor ``<name>`` as HTML)."""
    def code(word: str) -> str:
        core = word.rstrip(".,;:)")
        lead = len(core) - len(core.lstrip("("))
        core, tail = core[lead:], word[len(core):]
        if "`" in core or not (core.startswith("--") or re.search(r"[<>*_]", core)):
            return word
        return f"{word[:lead]}`{core}`{tail}"
    return " ".join(code(w) for w in text.split(" "))


def flags(verb: str) -> list[tuple[str, str]]:
    """``(flag and its value, meaning)`` for every flag of ``verb``; the meaning is the
    help text, with the default when the help does not say it, and "required" first for
    a flag that must be given."""
    parsers = _subparsers()
    if verb not in parsers:
        raise ValueError(f"unknown verb {verb!r}; verbs are {', '.join(parsers)}")
    parser = parsers[verb]
    formatter = parser._get_formatter()
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        text = _HERE.sub(")", action.help or "")
        default = action.default
        if ("default" not in text and default not in (None, False, "")
                and not isinstance(action, argparse._StoreTrueAction)):
            text = f"{text} (default {default})" if text else f"default {default}"
        if action.required:
            text = f"required; {text}" if text else "required"
        rows.append((f"`{formatter._format_action_invocation(action)}`",
                     _markdown(text) or "–"))
    return rows


def flags_table(verb: str):
    """:func:`flags` of ``verb`` as a :func:`zfbook.display.table` named ``cli-VERB``."""
    from ..display import table

    return table(flags(verb), ["flag", "meaning"], align="left", name=f"cli-{verb}",
                 caption=f"`python -m zfbook {verb}`: {dict(verbs())[verb]}.")
