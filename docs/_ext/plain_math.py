"""Sphinx extension: docstrings that write mathematics as plain text render as written.

The package's docstrings write formulas the way the paper's plain-text excerpts
do: ``|x - x'|`` for a norm, ``(B, *shape)`` for a batch shape. In
reStructuredText, ``|...|`` is a substitution reference and a lone ``*``
starts emphasis, so both would be errors (and ``sphinx-build -W`` fails on
them). Before autodoc parses a docstring, this hook escapes ``|`` and the
``*`` that open no emphasis, outside inline literals (````...````), literal
blocks (after ``::``) and table or line-block rows; everything else of reST
(roles, lists, ``*emphasis*``, ``**strong**``) is left alone.
"""

from __future__ import annotations

import re

#: Inline literals, roles with their target, and well-formed emphasis or strong emphasis: kept as they are.
KEEP = re.compile(r"``.+?``|:[\w:.-]+:`[^`]+`|`[^`]+`_{0,2}|(?<![\w*\\])\*\*?(?=\S)[^*]*?(?<=[^\s\\])\*\*?(?![\w*])")


#: Lines left as they are: line blocks and grid-table rows (``| ``), table borders, doctest, directives.
ROW = re.compile(r"\| |\|$|\+[-=+]|={2,}|>>>|\.\. ")


def escape_line(line: str) -> str:
    """``line`` with ``|`` and stray ``*`` escaped outside the spans :data:`KEEP` matches."""
    out, pos = [], 0
    for match in KEEP.finditer(line):
        out.append(_escape(line[pos:match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(_escape(line[pos:]))
    return "".join(out)


def _escape(text: str) -> str:
    return re.sub(r"(?<!\\)(\||\*(?=\S))", r"\\\1", text)   # a * before a space opens nothing (a bullet)


def plain_math(lines: list[str]) -> None:
    """Escape, in place, the docstring ``lines`` outside literal blocks and table rows."""
    literal_indent = None   # indentation of the paragraph that opened a literal block, while inside it
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None:
            if not stripped or indent > literal_indent:
                continue
            literal_indent = None
        if ROW.match(stripped):
            continue
        lines[i] = escape_line(line)
        if stripped.endswith("::"):
            literal_indent = indent


def _process(app, what, name, obj, options, lines) -> None:
    plain_math(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
