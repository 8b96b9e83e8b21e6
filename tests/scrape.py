"""A Prometheus scrape read as a test checks it: each sample by its name and labels, parsed
by prometheus-client's own parser (what Prometheus would read, not a text search)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

#: A sample's name and its labels, sorted.
Key = tuple[str, tuple[tuple[str, str], ...]]


def samples(text: str) -> dict[Key, float]:
    """Every sample of the exposition ``text``."""
    found: dict[Key, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def key(name: str, **labels: str) -> Key:
    return (name, tuple(sorted(labels.items())))


def series(found: dict[Key, float], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples named ``name``, by their labels."""
    return {labels: value for (sample, labels), value in found.items() if sample == name}
