"""Sphinx extension: inwhale's docstrings, written for people, parse as reStructuredText.

The docstrings are Google style (``Args:``, ``Returns:``, parsed by napoleon) with
reStructuredText inline markup (double-backtick literals, ``:math:`` and ``:func:`` roles,
``.. math::`` blocks, ``>>>`` examples). A few habits of plain-text mathematics are not
valid reStructuredText and would fail the ``-W`` build or render wrongly; before napoleon
runs, outside literals, roles, literal blocks, directives and doctests, this extension

* turns ``$...$`` into ``:math:`...``` (so docstring math renders with MathJax),
* escapes ``|`` (``|x|`` would be a substitution reference),
* escapes a ``_`` that ends a word (``R_`` would be a hyperlink reference),
* escapes a ``*`` that does not open or close emphasis (``2 *scale``),
* shows lines indented under a sentence (a formula, an aligned table of symbols) as a
  literal block, line breaks kept, instead of an "Unexpected indentation" error; puts a
  blank line where the indentation of prose drops, and before a bullet list that follows a
  sentence,
* shows a simple table whose cells overflow its ``===`` columns verbatim.

After napoleon, every docstring is checked with docutils; one that still has a structural
error is shown verbatim (as plain text, the old rendering) and listed at the end of the
build, so that a docstring can never break the ``-W`` build or render as garbage. A
reference such as ``:func:`inwhale.quantize``` to a name that a package re-exports is
resolved to the one entry of the object, under the module that defines it.

Example: ``"error |x − x̂| = $s/2$ at most"`` becomes
``"error \\|x − x̂\\| = :math:`s/2` at most"``.
"""

from __future__ import annotations

import re

# Inline pieces left alone: ``literal``, :role:`text`, `interpreted` / `link`_.
_PROTECTED = re.compile(r"(``.+?``|:[\w:+.-]+:`[^`]*`|`[^`]+`_{0,2})")
_DOLLAR_MATH = re.compile(r"(?<![\w$\\])\$([^$\s](?:[^$]*?[^$\s])?)\$(?![\w$])")
_EMPHASIS = re.compile(r"(?<![\w*\\])(\*\*?)[^\s*](?:[^*]*?[^\s*])?\1(?![\w*])")
_WORD_END_UNDERSCORE = re.compile(r"(?<=[^\s\\])_(?=[\s.,;:)\]}'\"]|$)")
_DIRECTIVE = re.compile(r"^\s*\.\. [\w:-]+::")


def _escape_plain(text: str) -> str:
    """Escape one piece of prose that holds no protected inline markup."""
    text = text.replace("|", "\\|")
    text = _WORD_END_UNDERSCORE.sub(r"\\_", text)
    keep = [m.span() for m in _EMPHASIS.finditer(text)]

    def star(i: int) -> bool:
        return not any(a <= i < b for a, b in keep)

    return "".join("\\*" if ch == "*" and star(i) else ch for i, ch in enumerate(text))


def escape_line(line: str) -> str:
    """One line of docstring prose, made valid reStructuredText (see the module docstring).

    >>> escape_line("|x| ≤ $s/2$ and ``a|b``")
    '\\\\|x\\\\| ≤ :math:`s/2` and ``a|b``'
    """
    line = _DOLLAR_MATH.sub(lambda m: f":math:`{m.group(1)}`", line)
    pieces = _PROTECTED.split(line)
    # split() with one group alternates prose (even) and protected markup (odd)
    out = [p if i % 2 else _escape_plain(p) for i, p in enumerate(pieces)]
    for i in range(1, len(out), 2):  # ``a``→``b``: markup must touch space or punctuation
        if out[i + 1][:1] and not re.match(r"[\s.,;:!?)\]}'\"/-]", out[i + 1][:1]):
            out[i + 1] = "\\ " + out[i + 1]
        if out[i - 1][-1:] and not re.match(r"[\s(\[{'\"/-]", out[i - 1][-1:]):
            out[i - 1] += "\\ "
    return "".join(out)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Keyword Args|Keyword Arguments|Other Parameters|Returns?|"
    r"Raises|Yields?|Attributes|Examples?|Notes?|Warnings?|See Also|References|Methods|Todo"
    r"|Shapes?|Glossary):\s*$"
)
_BULLET = re.compile(r"^\s*([-*+•]|\d+[.)]|#\.)\s+\S")
_TABLE_RULE = re.compile(r"^\s*=+(\s+=+)+\s*$")
_UNDERLINE = re.compile(r"^\s*([-=~^\"'`#*+])\1{2,}\s*$")


def _table_block(lines: list[str], start: int) -> int:
    """End (exclusive) of the simple table whose first ``===`` rule is lines[start]."""
    rules, i = 0, start
    while i < len(lines) and lines[i].strip():
        rules += bool(_TABLE_RULE.match(lines[i]))
        i += 1
        if rules == 3:
            break
    return i


def escape_docstring(lines: list[str]) -> list[str]:
    """Escape every prose line of a docstring; code, doctests and directives stay verbatim."""
    out: list[str] = []
    verbatim_indent: int | None = None  # inside a literal block or directive body
    section_indent: int | None = None  # inside a Google section (napoleon parses it)
    in_doctest = False
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        prev = out[-1] if out else ""
        i += 1
        if verbatim_indent is not None:
            if not stripped or _indent(line) > verbatim_indent:
                out.append(line)
                continue
            verbatim_indent = None
            if prev.strip():
                out.append("")
                prev = ""
        if in_doctest:
            if stripped:
                out.append(line)
                continue
            in_doctest = False
        if section_indent is not None and stripped and _indent(line) <= section_indent:
            section_indent = None
        if stripped.startswith(">>>"):
            in_doctest = True
            if prev.strip() and section_indent is None:
                out.append("")
            out.append(line)
            continue
        if _DIRECTIVE.match(line):
            verbatim_indent = _indent(line)
            out.append(line)
            continue
        if _TABLE_RULE.match(line):
            end = _table_block(lines, i - 1)
            table = lines[i - 1 : end]
            width = max(len(r) for r in table)
            if any(len(r.rstrip()) > len(line.rstrip()) for r in table) or width > 100:
                out += ["", "::", ""] + [f"    {r}" for r in table] + [""]
            else:
                out += table
            i = end
            continue
        if stripped and i < len(lines) and _UNDERLINE.match(lines[i]) and not _TABLE_RULE.match(
            lines[i]
        ):
            # a section title inside a docstring: a rubric (no duplicate page-level labels)
            out += ["", f"{' ' * _indent(line)}.. rubric:: {stripped}", ""]
            i += 1
            continue
        if _SECTION.match(line):
            section_indent = _indent(line)
        elif stripped and prev.strip() and section_indent is None:
            bullet_start = _BULLET.match(line) and not _BULLET.match(prev)
            in_item = _BULLET.match(prev) and _indent(line) > _indent(prev)
            if _indent(line) > _indent(prev) and not in_item and not bullet_start:
                # lines indented under a sentence (a formula, an aligned list): keep their
                # line breaks and alignment, as a literal block
                out += ["", f"{' ' * _indent(prev)}::", "", line]
                verbatim_indent = _indent(prev)
                continue
            if bullet_start or (_indent(line) != _indent(prev) and not in_item):
                out.append("")
        out.append(escape_line(line))
        if stripped.endswith("::"):
            verbatim_indent = _indent(line)
    return out


_IGNORED_MESSAGES = ("Unknown interpreted text role", "Unknown directive type", "No role entry",
                     "No directive entry")


def rst_problems(lines: list[str], env=None) -> list[str]:
    """Structural reStructuredText errors in ``lines`` (Sphinx roles and directives allowed).

    ``env`` is the Sphinx build environment, which Sphinx's own directives and roles need;
    anything they would log during this trial parse is suppressed.
    """
    from docutils import nodes
    from docutils.core import publish_doctree
    from sphinx.util.logging import suppress_logging

    settings = {"report_level": 5, "halt_level": 5, "warning_stream": False, "env": env}
    try:
        with suppress_logging():
            tree = publish_doctree("\n".join(lines), settings_overrides=settings)
    except Exception as err:  # a directive that cannot run outside a page: not our concern
        return [] if env is not None else [repr(err)]
    problems = []
    for msg in tree.findall(nodes.system_message):
        text = msg.astext()
        if msg["level"] >= 2 and not any(s in text for s in _IGNORED_MESSAGES):
            problems.append(text.splitlines()[0])
    return problems


def _verbatim(lines: list[str]) -> list[str]:
    text = [line for line in lines]
    while text and not text[-1].strip():
        text.pop()
    return ["::", ""] + [f"   {line}" if line else "" for line in text] + [""]


_ORIGINAL: dict[str, list[str]] = {}
_VERBATIM: list[str] = []


def _before_napoleon(app, what, name, obj, options, lines) -> None:
    _ORIGINAL[name] = list(lines)
    lines[:] = escape_docstring(lines)


def _after_napoleon(app, what, name, obj, options, lines) -> None:
    problems = rst_problems(lines, app.env)
    if problems:
        lines[:] = _verbatim(_ORIGINAL.get(name, lines))
        _VERBATIM.append(f"{name}: {problems[0]}")


def _resolve(dotted: str):
    """The object named ``dotted`` (a module path, then attributes), or None."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _missing_reference(app, env, node, contnode):
    """A re-exported name resolves to its one entry; a private or outside name to plain code."""
    from sphinx.util.nodes import make_refnode

    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    module, cls = node.get("py:module") or "", node.get("py:class") or ""
    candidates = [f"{module}.{cls}.{target}", f"{module}.{target}", target, f"inwhale.{target}"]
    domain = env.get_domain("py")
    for dotted in candidates:
        obj = _resolve(dotted.strip("."))
        if obj is None:
            continue
        home, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
        canonical = f"{home}.{qualname}" if home and qualname else dotted
        entry = domain.objects.get(canonical)
        if entry is not None:
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id,
                                contnode, canonical)
        return contnode  # exists, but undocumented (private, no docstring, outside inwhale)
    if "." not in target and module:
        # a method or attribute named from another class of the same module (a base class)
        prefix, suffix = f"{module}.", f".{target}"
        same = [n for n in domain.objects if n.startswith(prefix) and n.endswith(suffix)]
        if len(same) == 1:
            entry = domain.objects[same[0]]
            return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id,
                                contnode, same[0])
        if target.startswith("__") or node["reftype"] == "attr":
            return contnode  # a dunder or an instance attribute: documented in the prose
    return None


def _report(app, exception) -> None:
    if _VERBATIM:
        from sphinx.util import logging

        logging.getLogger(__name__).info(
            "[inwhale_docstrings] %d docstring(s) shown verbatim (not valid reST): %s",
            len(_VERBATIM), "; ".join(_VERBATIM),
        )


def setup(app):
    # napoleon converts Google sections at the default priority (500): escape first, check after.
    app.connect("autodoc-process-docstring", _before_napoleon, priority=400)
    app.connect("autodoc-process-docstring", _after_napoleon, priority=600)
    app.connect("missing-reference", _missing_reference, priority=900)
    app.connect("build-finished", _report)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
