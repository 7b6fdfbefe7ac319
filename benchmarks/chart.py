"""The bar chart of every comparison (matplotlib, installed by ``make bench``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from .report import Comparison, format_value

HIGHLIGHT = "#2b6cb0"  # trioserve and adapters
OTHER = "#a0aec0"


def write_chart(comparisons: Sequence[Comparison], path: Path, *, title: str) -> None:
    """One horizontal bar panel per comparison: medians, with min-max whiskers."""
    columns = 2
    rows = math.ceil(len(comparisons) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(14, 3.1 * rows), squeeze=False)
    for axis, comparison in zip(axes.flat, comparisons, strict=False):
        labels = [series.label for series in comparison.series]
        medians = [series.median or 0.0 for series in comparison.series]
        pairs = list(zip(medians, comparison.series, strict=True))
        low = [m - min(s.values.values(), default=m) for m, s in pairs]
        high = [max(s.values.values(), default=m) - m for m, s in pairs]
        colours = [
            HIGHLIGHT if label.startswith(("trioserve", "adapters")) else OTHER for label in labels
        ]
        positions = range(len(labels))
        axis.barh(positions, medians, xerr=[low, high], color=colours, capsize=3)
        axis.set_yticks(list(positions), labels, fontsize=8)
        axis.invert_yaxis()
        better = "higher" if comparison.higher_is_better else "lower"
        axis.set_title(f"{comparison.number}. {comparison.title}", fontsize=9)
        axis.set_xlabel(f"{comparison.unit} ({better} is better)", fontsize=8)
        axis.tick_params(axis="x", labelsize=8)
        top = max((m + h for m, h in zip(medians, high, strict=True)), default=0.0) or 1.0
        axis.set_xlim(0, top * 1.25)
        for position, series, middle, above in zip(
            positions, comparison.series, medians, high, strict=True
        ):
            status = series.status()
            text = "n/a" if status is not None else format_value(middle, comparison.unit)
            axis.text(top * 0.01 + middle + above, position, f" {text}", va="center", fontsize=7)
    for axis in axes.flat[len(comparisons) :]:
        axis.set_visible(False)
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
