"""check_notebook.py [--unexecuted] NOTEBOOK.ipynb [KIND]: checks a notebook that
probe notebook wrote and nbconvert executed: valid nbformat 4
(nbformat.validate), no error outputs, and every cell tagged "plot" has an
image/png output.  With --unexecuted, a notebook as probe wrote it: valid, no
outputs yet, plot cells present, and every code cell valid Python (IPython
magics aside).  Prints "check_notebook: OK ..." and exits 0, or explains and
exits 1."""
import sys

import nbformat


def main():
    args = sys.argv[1:]
    unexecuted = "--unexecuted" in args
    args = [a for a in args if a != "--unexecuted"]
    path = args[0]
    kind = args[1] if len(args) > 1 else None
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    bad = []
    if nb.nbformat != 4:
        bad.append(f"nbformat {nb.nbformat}, expected 4")
    if kind and nb.metadata.get("probe", {}).get("kind") != kind:
        bad.append(f"metadata.probe.kind is {nb.metadata.get('probe')}, expected {kind}")
    first = "".join(nb.cells[0].source) if nb.cells else ""
    for pkg in ("numpy", "pandas", "h5py", "matplotlib"):
        if pkg not in first:
            bad.append(f"the first cell does not name {pkg}")
    plots = images = 0
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        if unexecuted:
            src = "".join(c.source)
            src = "\n".join("" if l.lstrip().startswith("%") else l for l in src.split("\n"))
            try:
                compile(src, f"cell {i}", "exec")
            except SyntaxError as e:
                bad.append(f"cell {i}: {e}")
            if c.outputs or c.get("execution_count") is not None:
                bad.append(f"cell {i} has outputs before running")
            if "plot" in c.metadata.get("tags", []):
                plots += 1
            continue
        if c.get("execution_count") is None:
            bad.append(f"cell {i} did not run")
        for o in c.outputs:
            if o.output_type == "error":
                bad.append(f"cell {i}: {o.ename}: {o.evalue}")
        if "plot" in c.metadata.get("tags", []):
            plots += 1
            n = sum(1 for o in c.outputs if "image/png" in o.get("data", {}))
            if n == 0:
                bad.append(f"plot cell {i} has no image output")
            images += n
    if plots == 0:
        bad.append("no plot cells")
    if bad:
        print("check_notebook: FAIL " + path)
        for b in bad:
            print("  " + b)
        sys.exit(1)
    what = "not executed" if unexecuted else f"{images} images"
    print(f"check_notebook: OK {path}: {len(nb.cells)} cells, {plots} plot cells, {what}")


main()
