"""Render the Markdown of ``bpttcheck derive`` to an image with matplotlib's mathtext.

matplotlib is optional and imported here only. Headings become bold text lines; each
``$$ … $$`` block becomes one mathtext line (so the derivation uses mathtext's subset of LaTeX).
"""

from __future__ import annotations

import os

from bpttcheck.reference.validation import check_int, check_positive_float, fail

__all__ = ["render_markdown"]


def render_markdown(text: str, path: str, *, width: float = 13.0, dpi: int = 110) -> int:
    """Draw ``text`` to ``path`` (PNG); returns the number of equations drawn."""
    if not isinstance(text, str):
        fail("text", text, "the Markdown text of bpttcheck derive (a string)")
    if not isinstance(path, (str, os.PathLike)):
        fail("path", path, "a file path for the PNG")
    check_positive_float("width", width)
    check_int("dpi", dpi, minimum=1)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("$$") and line.endswith("$$"):
            items.append(("math", "$" + line[2:-2].strip() + "$"))
        elif line.startswith("#"):
            items.append(("head", line.lstrip("#").strip()))
    # Lines with limits (sums, products) or fractions are drawn taller.
    sizes = [0.75 if k == "math" and any(c in s for c in (r"\sum", r"\prod", r"\frac")) else 0.45 for k, s in items]
    height = sum(sizes) + 0.3
    fig = plt.figure(figsize=(width, height))
    y = 1.0 - 0.2 / height
    for (kind, content), size in zip(items, sizes):
        if kind == "head":
            fig.text(0.01, y, content, fontsize=12, weight="bold", va="top")
        else:
            fig.text(0.03, y, content, fontsize=12, va="top")
        y -= size / height
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return sum(1 for k, _ in items if k == "math")
