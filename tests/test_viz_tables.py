"""markdown_table: pipes inside cells are escaped, so the table renders as a table."""

import pytest

from inwhale.viz import markdown_table


def test_pipes_in_cells_are_escaped_and_rows_counted():
    text = markdown_table(["rule", "$|v|$"], [["floor", "a|b"], ["ceil", 2]])
    lines = text.splitlines()
    assert lines[0] == r"| rule | $\|v\|$ |"
    assert lines[2] == r"| floor | a\|b |"
    # every line has exactly header-count + 1 unescaped pipes
    assert all(line.replace(r"\|", "").count("|") == 3 for line in lines)


def test_ragged_row_and_empty_header_are_refused():
    with pytest.raises(ValueError, match=r"rows\[1\]"):
        markdown_table(["a", "b"], [[1, 2], [3]])
    with pytest.raises(ValueError, match="header"):
        markdown_table([], [])
