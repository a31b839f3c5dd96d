"""The report's charts: SVG drawn on the server with pygal, inlined into the page.

pygal writes plain SVG with its CSS inside (no system libraries, no fonts to install, unlike matplotlib); its
tooltips need a script from the internet, so they are left out: the page works offline and in print, and the table
beside each chart (and its caption) gives the same figures as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal

import pygal
from pygal.style import Style

_PRINTABLE = Style(
    background="white",
    plot_background="white",
    foreground="#222",
    foreground_strong="#000",
    foreground_subtle="#888",
    colors=("#1f4e79", "#c55a11", "#548235", "#7f6000", "#7030a0"),
    font_family="Helvetica, Arial, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=12,
    legend_font_size=13,
    title_font_size=15,
)
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _options(**extra: object) -> dict[str, object]:
    return {
        "style": _PRINTABLE,
        "js": [],  # no tooltip script from the internet
        "disable_xml_declaration": True,
        "width": 760,
        "height": 320,
        "margin": 16,
        "print_values": True,
        "show_y_guides": True,
        "truncate_label": -1,  # never cut a bucket or step name
        "include_x_axis": True,  # values from zero: a bar or a trend is never exaggerated
        **extra,
    }


def _svg(chart: pygal.graph.graph.Graph) -> str:
    """The chart as inline SVG without pygal's config script and credits (nothing runs, nothing is fetched)."""
    return _COMMENT.sub("", _SCRIPT.sub("", chart.render(is_unicode=True)))


def bars(
    labels: Sequence[str], series: Sequence[tuple[str, Sequence[Decimal | float | None]]],
    formatter: Callable[[float], str], *, show_legend: bool = False,
) -> str:
    """A bar chart (one bar per label and series), values printed on the bars."""
    chart = pygal.Bar(**_options(show_legend=show_legend, legend_at_bottom=True, value_formatter=formatter,
                                 print_values_position="top"))
    chart.x_labels = list(labels)
    for title, values in series:
        chart.add(title, [None if value is None else float(value) for value in values])
    return _svg(chart)


def line(labels: Sequence[str], values: Sequence[Decimal | None], formatter: Callable[[float], str]) -> str:
    """A line chart over time (gaps where a value is unknown)."""
    chart = pygal.Line(**_options(show_legend=False, value_formatter=formatter, x_label_rotation=30,
                                  print_values=len(values) <= 12, allow_interruptions=True))
    chart.x_labels = list(labels)
    chart.add("", [None if value is None else float(value) for value in values])
    return _svg(chart)
