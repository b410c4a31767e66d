"""Read the README's structure: its sections and its fenced code blocks.

Two consumers, one reader: the docs build includes README sections in its pages (the
README stays the one copy of that prose) and ``tests/test_readme_examples.py`` runs the
README's Python blocks. Both must tell a ``# comment`` inside a code block from a
heading, so both go through :func:`lines_outside_code`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^(```+|~~~+)(.*)$")
_HEADING = re.compile(r"^(#{1,6}) +(.*?)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*([a-z-]+)(?::\s*(.*?))?\s*-->\s*$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced code block.

    Attributes
    ----------
    language : str
        The info string's first word (``""`` if none).
    code : str
        The block's text.
    line : int
        1-based line of the opening fence.
    directive : tuple[str, str] or None
        ``(name, argument)`` of an HTML comment ``<!-- name: argument -->`` on the line
        just before the fence (blank lines between are allowed), else ``None``.
    """

    language: str
    code: str
    line: int
    directive: tuple[str, str] | None


def lines_outside_code(text: str) -> list[tuple[int, str, bool]]:
    """Each line of ``text`` as ``(index, line, inside_a_code_block)``; fences count as inside."""
    out, fence = [], None
    for i, line in enumerate(text.splitlines()):
        match = _FENCE.match(line.lstrip())
        if fence is None and match:
            fence = match.group(1)
            out.append((i, line, True))
        elif fence is not None:
            out.append((i, line, True))
            if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                fence = None
        else:
            out.append((i, line, False))
    return out


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced code block of a Markdown text, in order."""
    lines = text.splitlines()
    blocks, start, directive = [], None, None
    last_directive: tuple[str, str] | None = None
    for i, line, inside in lines_outside_code(text):
        if not inside:
            match = _DIRECTIVE.match(line.strip())
            if match:
                last_directive = (match.group(1), match.group(2) or "")
            elif line.strip():
                last_directive = None
            continue
        if start is None:
            start, directive, last_directive = i, last_directive, None
        elif _FENCE.match(line.lstrip()) and line.strip().strip(line.strip()[0]) == "":
            info = _FENCE.match(lines[start].lstrip()).group(2).strip()
            language = info.split()[0] if info else ""
            code = "\n".join(lines[start + 1 : i]) + "\n"
            blocks.append(CodeBlock(language, code, start + 1, directive))
            start = None
    return blocks


def section(text: str, heading: str) -> tuple[int, str]:
    """The section of ``text`` whose heading starts with ``heading``.

    Returns
    -------
    tuple[int, str]
        The heading's level and the section's body: the lines after the heading up to
        the next heading of the same or a higher level (subsections included).

    Raises
    ------
    KeyError
        If no heading outside code blocks starts with ``heading``.
    """
    lines = lines_outside_code(text)
    level, body = None, []
    for _, line, inside in lines:
        match = None if inside else _HEADING.match(line)
        if level is None:
            if match and match.group(2).startswith(heading):
                level = len(match.group(1))
            continue
        if match and len(match.group(1)) <= level:
            break
        body.append(line)
    if level is None:
        raise KeyError(f"no heading starting with {heading!r}")
    return level, "\n".join(body).strip("\n") + "\n"


def shift_headings(text: str, by: int) -> str:
    """``text`` with every heading outside code blocks ``by`` levels deeper (or higher)."""
    out = []
    for _, line, inside in lines_outside_code(text):
        match = None if inside else _HEADING.match(line)
        if match:
            level = min(6, max(1, len(match.group(1)) + by))
            line = f"{'#' * level} {match.group(2)}"
        out.append(line)
    return "\n".join(out)
