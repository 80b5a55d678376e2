"""Reading Prometheus text exposition (Triton's and vLLM's /metrics pages).

Sample names are kept exactly as the page prints them (prometheus_client's parser
would rename a counter `x` to `x_total`, which then matches nothing in the docs).
"""
from __future__ import annotations

import re

SampleKey = tuple[str, tuple[tuple[str, str], ...]]

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def parse_prometheus_text(text: str) -> dict[SampleKey, float]:
    """{(sample name, sorted label pairs): value} for every sample on a /metrics page."""
    samples: dict[SampleKey, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            raise ValueError(f"not a Prometheus sample line: {line[:120]!r}")
        labels = tuple(sorted(
            (m["key"], m["value"].replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\"))
            for m in _LABEL.finditer(match["labels"] or "")))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def metric_total(samples: dict[SampleKey, float], name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    return sum(value for (sample, pairs), value in samples.items()
               if sample == name and all(dict(pairs).get(k) == v for k, v in labels.items()))


_TYPE = re.compile(r"^#\s*TYPE\s+(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\s+(?P<kind>\w+)")
_SERIES_OF = {"histogram": ("_bucket", "_count", "_sum"), "summary": ("", "_count", "_sum"),
              "gaugehistogram": ("_bucket", "_gcount", "_gsum")}


def exposed_metric_names(text: str) -> set[str]:
    """Every series name a /metrics page can carry: the names of its samples, and those its `# TYPE` lines
    declare (a histogram `x` as x_bucket, x_count and x_sum). A labelled counter that has not counted yet
    (prometheus_client prints no sample before its first `.labels(...)`) is still declared, so a rule that
    reads it is not reported as reading a metric that does not exist."""
    names = {name for name, _ in parse_prometheus_text(text)}
    for line in text.splitlines():
        declared = _TYPE.match(line.strip())
        if declared:
            suffixes = _SERIES_OF.get(declared["kind"], ("",))
            names |= {declared["name"] + suffix for suffix in suffixes}
    return names
