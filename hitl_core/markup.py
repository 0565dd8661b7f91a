"""Escaping user text (project, file, column, class and user names, notes) for Markdown and plotly.

Pure functions shared by the app (through :mod:`hitl_ui.text`) and the exports written without
Streamlit (the model card, :mod:`hitl_core.report`): one definition of "inert", wherever text goes.
"""
from __future__ import annotations

import html
import re
import string

# CommonMark lets a backslash escape any ASCII punctuation, so escaping all of it covers links,
# images, emphasis, code, headings, lists ("1." and "-"), tables, HTML and <autolinks>,
# strikethrough, math ($) and Streamlit's ":color[...]" directives, with nothing to forget. An
# underscore between two letters or digits ("group_b") can never start or end emphasis, so it is
# left as typed: names keep reading the same in the page source and in tests.
_PUNCTUATION = re.compile("((?<![^\\W_])_|_(?![^\\W_])|[" + re.escape(string.punctuation.replace("_", "")) + "])")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Streamlit's GitHub-flavoured Markdown also turns bare "http://…", "www.…" and "a@b.c" into links
# *after* escapes are resolved, so escaping cannot stop it: an invisible word joiner (U+2060) inside
# the pattern does.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(?<=https)(?=:)|(?<=http)(?=:)|(?<=www)(?=\.)|(?<=@)")


def md_escape(text: object) -> str:
    """``text`` as Markdown that renders exactly as the characters typed, on one line.

    Every ASCII punctuation character gets a backslash (except an underscore inside a word), line
    breaks become spaces (a name must not start a new heading, list or block), and bare URLs and
    e-mail addresses get an invisible word joiner so they are not turned into links.
    """
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(WORD_JOINER, _LINE_BREAK.sub(" ", str(text))))


def md_code(text: object) -> str:
    """``text`` as an inline code span (monospace, shown verbatim), whatever backticks it holds.

    Backslash escapes do not work inside code spans, so the fence is made longer than the longest
    run of backticks in the text (CommonMark), and padded with spaces when the text touches one.
    """
    body = _LINE_BREAK.sub(" ", str(text))
    if not body:
        return ""
    fence = "`" * (max((len(run) for run in re.findall("`+", body)), default=0) + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"


def plotly_text(text: object) -> str:
    """``text`` for a plotly title, axis or tick label: plotly renders a few HTML tags there (``<a href>`` too)."""
    return html.escape(str(text), quote=False)
