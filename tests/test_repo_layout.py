"""The book's infrastructure stays wired up: self-hosted JS present, TOC and API page generated,
CI entry point, references parse."""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def test_widget_js_is_self_hosted():
    js = CONFIG["sphinx"]["config"]["nb_ipywidgets_js"]
    assert js, "nb_ipywidgets_js must be set, or MyST-NB loads ipywidgets from a CDN"
    for path in js:
        assert not path.startswith(("http:", "https:", "//")), path
        assert (ROOT / "_static" / path).is_file(), f"_static/{path} missing"


def test_mathjax_is_self_hosted():
    path = CONFIG["sphinx"]["config"]["mathjax_path"]
    assert not path.startswith(("http:", "https:", "//"))
    assert (ROOT / "_static" / path).is_file()
    assert (ROOT / "_static/fontawesome4/css/font-awesome.min.css").is_file()


def test_toc_and_api_page_are_generated_from_the_tree():
    for script in ("make_toc.py", "make_api.py"):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / script), "--check"],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, f"{proc.stderr.strip()} (scripts/test.sh does this for you)"


def test_ci_runs_the_test_script():
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_references_parse_without_duplicates():
    from pybtex.database import parse_file

    data = parse_file(str(ROOT / "references.bib"))  # raises on duplicate keys
    for key in ("gray1998quantization", "jacob2018quantization", "allal2025smollm2"):
        assert key in data.entries
