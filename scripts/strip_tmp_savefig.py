"""Remove debugging ``fig.savefig("/tmp/...")`` lines from chapter notebooks (run by hand)."""

import json
import re
import sys
from pathlib import Path

PAT = re.compile(r'^\s*(fig|plt)\.savefig\("/tmp/[^"]*"[^\n]*\)\s*$')

for path in map(Path, sys.argv[1:]):
    nb = json.loads(path.read_text())
    n = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = cell["source"]
        kept = [ln for ln in lines if not PAT.match(ln.rstrip("\n"))]
        n += len(lines) - len(kept)
        if kept and kept[-1].endswith("\n"):
            kept[-1] = kept[-1].rstrip("\n")
        cell["source"] = kept
    if n:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(path, n)
