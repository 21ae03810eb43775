#!/usr/bin/env python
"""Build the notebooks in this folder from their percent-format sources (`# %%` code cells,
`# %% [markdown]` markdown cells whose lines start with `# `), then execute them.

    pip install -e ".[notebooks]"
    python notebooks/build_notebooks.py                # build + execute every notebook source
    python notebooks/build_notebooks.py --no-execute   # build without outputs

Sources: every `*.py` here with a `# %%` cell marker (this script excepted). The `.ipynb` next
to each source is overwritten; the tests check that its cells equal the source's.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def parse_cells(text: str) -> list[tuple[str, str]]:
    """`[(cell_type, source), ...]` of a percent-format script (a leading `# ---` header block,
    as jupytext writes, is skipped)."""
    lines = text.splitlines()
    if lines and lines[0].strip() == "# ---":
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "# ---")
        lines = lines[end + 1:]
    cells: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("# %%"):
            cells.append(("markdown" if "[markdown]" in line else "code", []))
        elif cells:
            cells[-1][1].append(line)
    out = []
    for kind, body in cells:
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        if kind == "markdown":
            body = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body]
        if body:
            out.append((kind, "\n".join(body)))
    return out


def sources() -> list[pathlib.Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name != pathlib.Path(__file__).name
                  and "# %%" in p.read_text())


def build(path: pathlib.Path, execute: bool, timeout: int = 600) -> pathlib.Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, src in parse_cells(path.read_text()):
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src))
    if execute:
        from nbclient import NotebookClient

        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    out = path.with_suffix(".ipynb")
    nbformat.write(nb, out)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-execute", action="store_true", help="write the notebooks without running them")
    ap.add_argument("names", nargs="*", help="source files (default: all)")
    args = ap.parse_args()
    paths = [HERE / n for n in args.names] if args.names else sources()
    for p in paths:
        print(f"building {p.name} ...", file=sys.stderr)
        print(build(p, execute=not args.no_execute))


if __name__ == "__main__":
    main()
