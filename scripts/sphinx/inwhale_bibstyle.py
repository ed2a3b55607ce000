"""Sphinx extension: bibliography entries labelled author–year, like the citations in the text.

The chapters cite author–year (``bibtex_reference_style: author_year``: "Frantar et al.
(2023)"), but sphinxcontrib-bibtex labels the entries of the bibliography with pybtex's
default *alpha* labels (``[FAHA23]``), so the two did not match. This registers a pybtex
formatting style, ``inwhale_author_year`` (``bibtex_default_style`` in _config.yml), that
is pybtex's ``plain`` style with labels "Surname Year", "Surname and Other Year" or
"Surname et al. Year" (a, b, … appended when two entries would share a label), sorted by
author, year and title.
"""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _surname(person) -> str:
    names = person.rich_prelast_names + person.rich_last_names
    return " ".join(n.render_as("text") for n in names)


def author_year_label(entry) -> str:
    """"Surname Year" for one pybtex entry (authors, else editors, else the entry key)."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    year = entry.fields.get("year", "n.d.")
    if not persons:
        who = entry.fields.get("organization") or entry.fields.get("publisher") or entry.key
        who = who.replace("{", "").replace("}", "")
    elif len(persons) == 1:
        who = _surname(persons[0])
    elif len(persons) == 2:
        who = f"{_surname(persons[0])} and {_surname(persons[1])}"
    else:
        who = f"{_surname(persons[0])} et al."
    return f"{who} {year}"


class AuthorYearLabels(BaseLabelStyle):
    """pybtex label style: author–year labels, unique (a, b, … on collisions)."""

    def format_labels(self, sorted_entries):
        labels = [author_year_label(e) for e in sorted_entries]
        counts = {label: labels.count(label) for label in labels}
        seen: dict[str, int] = {}
        for label in labels:
            if counts[label] > 1:
                seen[label] = seen.get(label, 0) + 1
                label += "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            yield label


class AuthorYearStyle(PlainStyle):
    """pybtex's plain style with :class:`AuthorYearLabels`, sorted by author, year, title."""

    default_sorting_style = "author_year_title"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.label_style = AuthorYearLabels()
        self.format_labels = self.label_style.format_labels


register_plugin("pybtex.style.formatting", "inwhale_author_year", AuthorYearStyle)


def setup(app):
    return {"parallel_read_safe": True, "parallel_write_safe": True}
