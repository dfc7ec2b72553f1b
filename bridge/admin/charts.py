"""Charts as SVG drawn on the server (pygal), with no script: nothing loads from a CDN."""

from __future__ import annotations

import math

import pygal
from markupsafe import Markup
from pygal.style import Style

from bridge.reports.tables import Table

STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#333",
    foreground_strong="#111",
    foreground_subtle="#777",
    colors=("#d9534f", "#f0ad4e", "#5bc0de", "#5cb85c", "#428bca", "#9b59b6", "#34495e"),
    font_family="DejaVu Sans, Arial, sans-serif",
    label_font_size=12,
    major_label_font_size=12,
    value_font_size=11,
    title_font_size=15,
)
# pygal links its tooltip script from a CDN by default: js=() keeps the SVG self-contained
OPTIONS = {"style": STYLE, "js": (), "disable_xml_declaration": True, "print_values": True}


def bars(table: Table, value: int = -1, label: int = 0, title: str = "") -> Markup:
    """A horizontal bar per row: ``label`` column against ``value`` column."""
    chart = pygal.HorizontalBar(
        title=title or table.title,
        show_legend=False,
        height=max(220, 60 + 34 * len(table.rows)),
        width=800,
        **OPTIONS,
    )
    labels = [str(v) for v in table.column(label)]
    chart.x_labels = labels
    values = table.column(value)
    chart.add(table.columns[value], [float(v) for v in values])
    if values and all(isinstance(v, int) for v in values):
        top = max(values)
        chart.y_labels = list(range(0, top + 1, max(1, math.ceil(top / 10))))  # counts: whole
    return _svg(chart, table)


def grouped(table: Table, values: tuple[int, ...], title: str = "") -> Markup:
    """Bars of several columns side by side per row (e.g. median, p90 and deadline)."""
    chart = pygal.HorizontalBar(
        title=title or table.title,
        height=max(260, 80 + 30 * len(values) * len(table.rows)),
        width=800,
        legend_at_bottom=True,
        **OPTIONS,
    )
    chart.x_labels = [str(v) for v in table.column(0)]
    for index in values:
        chart.add(table.columns[index], [float(v) for v in table.column(index)])
    return _svg(chart, table)


def pie(table: Table, title: str = "") -> Markup:
    """A slice per row: first column the label, last the value."""
    chart = pygal.Pie(
        title=title or table.title, width=800, height=420, inner_radius=0.4, **OPTIONS
    )
    for row in table.rows:
        chart.add(str(row[0]), float(row[-1]))
    return _svg(chart, table)


def _svg(chart: pygal.graph.graph.Graph, table: Table) -> Markup:
    if not table.rows:
        return Markup('<p class="empty">Нет данных за выбранный период.</p>')
    return Markup(chart.render(is_unicode=True))  # noqa: S704 - pygal's own SVG, values escaped
