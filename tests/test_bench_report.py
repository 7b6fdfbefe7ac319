"""The pure parts of the benchmark harness: pairing rounds, targets, tables, parsers."""

from __future__ import annotations

import pytest

from benchmarks.report import (
    Comparison,
    Series,
    Target,
    comparison_markdown,
    evaluate,
    median,
    paired_ratios,
    parse_key_values,
    parse_wrk,
    ratio,
    replace_marked,
    summarize_collapsed,
    summary_markdown,
)
from benchmarks.servers import split_heads

WRK_OUTPUT = """\
Running 3s test @ http://127.0.0.1:40000/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  204.12us   5.10ms   90.00%
    Req/Sec    33.10k     1.20k   35.00k    70.00%
  98765 requests in 3.00s, 7.44MB read
  Socket errors: connect 0, read 12, write 0, timeout 3
  Non-2xx or 3xx responses: 2
Requests/sec:  32921.67
Transfer/sec:      2.48MB
"""


def series(label: str, values: dict[int, float], baseline: str | None = None) -> Series:
    made = Series(label, baseline=baseline)
    for number, value in values.items():
        made.record(number, value)
    return made


def test_ratio_pairs_rounds_and_takes_the_median() -> None:
    fast = series("fast", {0: 30.0, 1: 10.0, 2: 40.0})
    base = series("base", {0: 10.0, 2: 20.0, 3: 5.0})
    assert paired_ratios(fast, base) == [3.0, 2.0]  # rounds 1 and 3 have no partner
    assert ratio(fast, base) == 2.5
    assert ratio(fast, series("empty", {})) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([]) is None


def comparison() -> Comparison:
    return Comparison(
        "1",
        "Keep-alive requests/s",
        "req/s",
        "wrk",
        [
            series("trioserve", {0: 30_000.0, 1: 31_000.0}, baseline="trio"),
            series("trio", {0: 20_000.0, 1: 20_000.0}),
            Series("missing", baseline="trio", unavailable="adapters has no TCPServer yet"),
        ],
        targets=[
            Target("trioserve", "ratio_at_least", 1.5, "trio"),
            Target("trioserve", "ratio_at_least", 1.6, "trio"),
            Target("missing", "ratio_at_least", 1.0, "trio"),
        ],
    )


def test_targets_are_met_missed_or_not_measured() -> None:
    table = comparison()
    verdicts = [evaluate(table, target) for target in table.targets]
    assert [verdict.met for verdict in verdicts] == [True, False, None]
    assert verdicts[0].measured == "1.52x"


def test_difference_and_limit_targets() -> None:
    memory = Comparison(
        "4",
        "memory",
        "KiB/conn",
        "hold",
        [series("trioserve", {0: 5.5}), series("trio", {0: 5.0})],
        targets=[Target("trioserve", "diff_at_most", 1.0, "trio")],
    )
    assert evaluate(memory, memory.targets[0]).met is True
    stop = series("server", {0: 1.1, 1: 1.2, 2: 9.0})
    for number, left in enumerate([0.0, 2.0, 0.0]):
        stop.extras.setdefault("descriptors_left", {})[number] = left
    shutdown = Comparison("5", "shutdown", "s", "hold", [stop])
    quick_enough = Target("server", "at_most", 1.5)
    no_leaks = Target("server", "at_most", 0, metric="descriptors_left", stat="max", unit="fds")
    assert evaluate(shutdown, quick_enough).met is True  # the median, 1.2 s
    assert evaluate(shutdown, no_leaks).met is False  # one round left 2


def test_markdown_shows_figures_ratios_and_why_a_row_is_missing() -> None:
    text = comparison_markdown(comparison())
    assert "| trioserve | 30,500 req/s | 30,000 - 31,000 | 1.52x vs trio |" in text
    assert "| trio | 20,000 req/s | 20,000 - 20,000 | (baseline) |" in text
    assert "n/a (not available: adapters has no TCPServer yet)" in text
    assert "measured 1.52x: met yes" in text
    summary = summary_markdown([comparison()])
    assert summary.count("\n") == 4  # header, rule, three targets
    assert "| **no** |" in summary


def test_parse_wrk() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests_per_second == 32921.67
    assert result.requests == 98765
    assert result.socket_errors == {"connect": 0, "read": 12, "write": 0, "timeout": 3}
    assert result.errors == 17
    with pytest.raises(ValueError, match="no Requests/sec"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_parse_udpload_line() -> None:
    line = "sent=100 received=96 lost=4 late=0 errors=0 elapsed=1.000002 rate=95.9\n"
    figures = parse_key_values(line)
    assert figures["lost"] == 4
    assert figures["rate"] == 95.9
    with pytest.raises(ValueError, match="no name=value"):
        parse_key_values("udpload: recv: Connection refused")


def test_replace_marked() -> None:
    text = "intro\n<!-- a -->\nold\n<!-- b -->\nend\n"
    assert replace_marked(text, "<!-- a -->", "<!-- b -->", "new") == (
        "intro\n<!-- a -->\nnew\n<!-- b -->\nend\n"
    )
    with pytest.raises(ValueError, match="markers"):
        replace_marked("no markers", "<!-- a -->", "<!-- b -->", "new")


@pytest.mark.parametrize(
    ("buffer", "expected"),
    [
        (b"", (0, b"")),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", (0, b"GET / HTTP/1.1\r\nHost: x\r\n")),
        (b"GET / HTTP/1.1\r\n\r\n", (1, b"")),
        (b"GET / HTTP/1.1\r\n\r\nGET / HT", (1, b"GET / HT")),
        (b"A\r\n\r\nB\r\n\r\n", (2, b"")),
    ],
)
def test_split_heads(buffer: bytes, expected: tuple[int, bytes]) -> None:
    assert split_heads(buffer) == expected


def test_summarize_collapsed_profile() -> None:
    stacks = "main;serve;send_all 6\nmain;serve;recv 3\nmain;poll 1\nnot a stack line\n"
    text = summarize_collapsed(stacks, title="demo", top=2)
    own = text.split("own time (innermost frame):\n")[1].split("\n\n")[0].splitlines()
    assert own == ["  60.0%  send_all", "  30.0%  recv"]
    assert " 100.0%  main" in text
    assert "  90.0%  serve" in text
    assert summarize_collapsed("", title="empty") == "empty: no samples"


def test_secondary_column_shows_the_extra_and_its_paired_ratio() -> None:
    table = comparison()
    table.secondary = ("per_cpu_second", "req per server CPU-s")
    table.get("trioserve").extras["per_cpu_second"] = {0: 40_000.0, 1: 44_000.0}
    table.get("trio").extras["per_cpu_second"] = {0: 20_000.0, 1: 20_000.0}
    text = comparison_markdown(table)
    assert "| req per server CPU-s |" in text
    assert "| 1.52x vs trio | 42,000 (2.10x) |" in text
    assert "| (baseline) | 20,000 |" in text
