"""The pure parts of the benchmark harness: figures per round, medians, ratios, tables.

Nothing here starts a process or touches a socket, so tests can check it cheaply.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

TargetKind = Literal["ratio_at_least", "diff_at_most", "at_most"]


@dataclass
class Series:
    """One contender's figures in one comparison, by round."""

    label: str
    values: dict[int, float] = field(default_factory=dict)
    extras: dict[str, dict[int, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    unavailable: str | None = None
    baseline: str | None = None  # the label this one's ratio is taken against

    def record(self, round_number: int, value: float, **extras: float) -> None:
        self.values[round_number] = value
        for name, extra in extras.items():
            self.extras.setdefault(name, {})[round_number] = extra

    @property
    def median(self) -> float | None:
        return median(self.values.values())

    def status(self) -> str | None:
        """Why there is no figure (``None`` when there is one)."""
        if self.unavailable is not None:
            return f"n/a (not available: {self.unavailable})"
        if not self.values:
            reason = self.failures[-1] if self.failures else "no rounds ran"
            return f"failed ({reason})"
        return None


@dataclass(frozen=True)
class Target:
    """A goal from the issue, checked against a comparison's figures.

    ``ratio_at_least``: the median of the per-round ratios contender/baseline is at least
    ``bound``. ``diff_at_most``: the contender's median minus the baseline's is at most
    ``bound``. ``at_most``: the contender's ``metric`` (its main figure when ``None``),
    summarised by ``stat``, is at most ``bound``.
    """

    contender: str
    kind: TargetKind
    bound: float
    baseline: str | None = None
    metric: str | None = None
    stat: Literal["median", "max"] = "median"
    unit: str = ""


@dataclass(frozen=True)
class Verdict:
    measured: str
    goal: str
    met: bool | None  # None: a figure is missing


@dataclass
class Comparison:
    """One row of the issue: contenders run in alternation, several rounds."""

    number: str
    title: str
    unit: str
    setup: str
    series: list[Series]
    higher_is_better: bool = True
    targets: list[Target] = field(default_factory=list)
    #: An extra shown in a column of its own, with its paired ratio: (metric, heading).
    secondary: tuple[str, str] | None = None

    def get(self, label: str) -> Series:
        for series in self.series:
            if series.label == label:
                return series
        raise KeyError(f"no contender {label!r} in comparison {self.number}")


def median(values: Iterable[float]) -> float | None:
    """The median, or ``None`` for no values."""
    items = list(values)
    return statistics.median(items) if items else None


def paired_ratios(series: Series, baseline: Series, metric: str | None = None) -> list[float]:
    """series/baseline for every round in which both have a (non-zero baseline) figure.

    ``metric`` names one of the extras instead of the main figure.
    """
    mine = series.values if metric is None else series.extras.get(metric, {})
    theirs = baseline.values if metric is None else baseline.extras.get(metric, {})
    return [value / theirs[number] for number, value in sorted(mine.items()) if theirs.get(number)]


def ratio(series: Series, baseline: Series, metric: str | None = None) -> float | None:
    """The median of the per-round ratios: rounds run side by side share the noise."""
    return median(paired_ratios(series, baseline, metric))


def format_value(value: float, unit: str) -> str:
    if unit.endswith("/s"):
        return f"{value:,.0f}"
    if unit == "s":
        return f"{value:.3f}"
    if unit == "fds":
        return f"{value:.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def format_ratio(value: float) -> str:
    return f"{value:.2f}x"


def evaluate(comparison: Comparison, target: Target) -> Verdict:
    series = comparison.get(target.contender)
    unit = target.unit or comparison.unit
    if target.kind == "ratio_at_least":
        assert target.baseline is not None
        goal = f">= {format_ratio(target.bound)} {target.baseline}"
        value = ratio(series, comparison.get(target.baseline))
        if value is None:
            return Verdict("n/a", goal, None)
        return Verdict(format_ratio(value), goal, value >= target.bound)
    if target.kind == "diff_at_most":
        assert target.baseline is not None
        goal = f"<= {target.baseline} + {format_value(target.bound, unit)} {unit}"
        mine, theirs = series.median, comparison.get(target.baseline).median
        if mine is None or theirs is None:
            return Verdict("n/a", goal, None)
        difference = mine - theirs
        return Verdict(f"{difference:+.2f} {unit}", goal, difference <= target.bound)
    values = series.values if target.metric is None else series.extras.get(target.metric, {})
    name = "" if target.metric is None else f"{target.metric.replace('_', ' ')} "
    goal = f"{name}<= {format_value(target.bound, unit)} {unit}".rstrip()
    figure = (
        median(values.values()) if target.stat == "median" else max(values.values(), default=None)
    )
    if figure is None:
        return Verdict("n/a", goal, None)
    return Verdict(
        f"{name}{format_value(figure, unit)} {unit}".rstrip(), goal, figure <= target.bound
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines.extend("| " + " | ".join(row) + " |" for row in rows)
    return lines


def _met(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[met]


def _secondary_cell(comparison: Comparison, series: Series, metric: str) -> str:
    figure = median(series.extras.get(metric, {}).values())
    if figure is None:
        return "n/a"
    text = format_value(figure, comparison.unit)
    if series.baseline is not None:
        value = ratio(series, comparison.get(series.baseline), metric)
        if value is not None:
            text += f" ({format_ratio(value)})"
    return text


def comparison_markdown(comparison: Comparison) -> str:
    """A section for one comparison: median, spread and ratio per contender, then targets."""
    unit = comparison.unit
    better = "higher" if comparison.higher_is_better else "lower"
    baselines = {series.baseline for series in comparison.series if series.baseline}
    rows = []
    for series in comparison.series:
        status = series.status()
        if status is not None:
            rows.append([series.label, status, "", "", *([""] if comparison.secondary else [])])
            continue
        middle = series.median
        assert middle is not None
        values = series.values.values()
        spread = f"{format_value(min(values), unit)} - {format_value(max(values), unit)}"
        relative = ""
        if series.baseline is not None:
            value = ratio(series, comparison.get(series.baseline))
            relative = "n/a" if value is None else f"{format_ratio(value)} vs {series.baseline}"
        elif series.label in baselines:
            relative = "(baseline)"
        notes = "; ".join(dict.fromkeys(series.notes))
        label = f"{series.label} ({notes})" if notes else series.label
        row = [label, f"{format_value(middle, unit)} {unit}", spread, relative]
        if comparison.secondary is not None:
            row.append(_secondary_cell(comparison, series, comparison.secondary[0]))
        rows.append(row)
    lines = [
        f"### {comparison.number}. {comparison.title}",
        "",
        f"{comparison.setup}; {better} is better.",
        "",
        *_table(
            [
                "contender",
                "median",
                "min - max",
                "ratio (median of paired rounds)",
                *([comparison.secondary[1]] if comparison.secondary else []),
            ],
            rows,
        ),
    ]
    if comparison.targets:
        lines.append("")
        for target in comparison.targets:
            verdict = evaluate(comparison, target)
            lines.append(
                f"- target {target.contender}: {verdict.goal}; measured {verdict.measured}: "
                f"met {_met(verdict.met)}"
            )
    return "\n".join(lines)


def summary_markdown(comparisons: Sequence[Comparison]) -> str:
    """One table of every target of the issue with its measured figure."""
    rows = [
        [f"{comparison.number}. {comparison.title}", target.contender, verdict.goal,
         verdict.measured, _met(verdict.met)]
        for comparison in comparisons
        for target in comparison.targets
        for verdict in [evaluate(comparison, target)]
    ]  # fmt: skip
    return "\n".join(_table(["row", "contender", "target", "measured", "met"], rows))


def results_markdown(comparisons: Sequence[Comparison], preamble: str) -> str:
    sections = [comparison_markdown(comparison) for comparison in comparisons]
    return (
        "\n\n".join(
            [preamble.rstrip(), "## Targets", summary_markdown(comparisons), "## Rows", *sections]
        )
        + "\n"
    )


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    requests: int
    socket_errors: dict[str, int]
    non_2xx: int

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values()) + self.non_2xx


def parse_wrk(text: str) -> WrkResult:
    """Read the figures out of wrk's report.

    Raises:
        ValueError: The text has no ``Requests/sec`` line (wrk failed).
    """
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    if rate is None:
        raise ValueError(f"no Requests/sec in wrk's output: {text.strip()[-300:]!r}")
    total = re.search(r"^\s*(\d+) requests in", text, re.MULTILINE)
    errors_line = re.search(r"^\s*Socket errors: (.*)$", text, re.MULTILINE)
    socket_errors: dict[str, int] = {}
    if errors_line is not None:
        for name, count in re.findall(r"(\w+) (\d+)", errors_line.group(1)):
            socket_errors[name] = int(count)
    non_2xx = re.search(r"^\s*Non-2xx or 3xx responses: (\d+)", text, re.MULTILINE)
    return WrkResult(
        requests_per_second=float(rate.group(1)),
        requests=int(total.group(1)) if total else 0,
        socket_errors=socket_errors,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def parse_key_values(text: str) -> dict[str, float]:
    """Read ``name=number`` pairs (udpload's report line).

    Raises:
        ValueError: There are none.
    """
    pairs = {name: float(value) for name, value in re.findall(r"(\w+)=([-\d.]+)", text)}
    if not pairs:
        raise ValueError(f"no name=value figures in {text.strip()[-300:]!r}")
    return pairs


def replace_marked(text: str, start: str, end: str, content: str) -> str:
    """Replace what lies between the ``start`` and ``end`` marker lines of ``text``.

    Raises:
        ValueError: A marker is missing or they are out of order.
    """
    first = text.find(start)
    last = text.find(end)
    if first < 0 or last < first:
        raise ValueError(f"markers {start!r} and {end!r} not found in order")
    return text[: first + len(start)] + "\n" + content.strip() + "\n" + text[last:]


def summarize_collapsed(text: str, *, title: str, top: int = 25) -> str:
    """Where the samples of a collapsed-stack profile (py-spy ``--format raw``) went.

    Each input line is ``frame;frame;...;frame COUNT``, outermost frame first. The summary
    lists the functions with the most samples of their own (the innermost frame) and with
    the most samples in all (anywhere in the stack), as percentages of all samples.
    """
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + count
    if not total:
        return f"{title}: no samples"

    def ranking(counts: dict[str, int]) -> list[str]:
        best = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
        return [f"{100 * count / total:6.1f}%  {frame}" for frame, count in best]

    return "\n".join(
        [
            f"{title}: {total} samples (CPU only, idle waits excluded)",
            "",
            "own time (innermost frame):",
            *ranking(own),
            "",
            "total time (anywhere in the stack):",
            *ranking(inclusive),
        ]
    )
