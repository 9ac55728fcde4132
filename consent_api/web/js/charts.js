// Horizontal stacked bar charts as inline SVG, built with DOM calls (no inline style, so the
// page's CSP holds). Each chart also carries its numbers as a table for screen readers.

import { h } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

function textWidth(text) {
  return [...text].reduce((n, c) => n + (c.charCodeAt(0) > 255 ? 12 : 7), 0);
}

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * rows: [{label, values: {seriesKey: number}}]; series: [{key, label, color}].
 * Returns a <figure> with the SVG and a visually hidden table of the same numbers.
 */
export function barChart({ id, title, rows, series, unit = "", empty }) {
  const figure = h("figure", { class: "chart", "data-chart": id });
  figure.append(h("h3", { id: `${id}-title`, text: title }));
  if (!rows.length) {
    figure.append(h("p", { class: "empty", text: empty }));
    return figure;
  }
  const labelWidth = 120;
  const barArea = 170;
  const rowHeight = 24;
  const height = rows.length * rowHeight + 34;
  const max = Math.max(1, ...rows.map((r) => series.reduce((n, x) => n + (r.values[x.key] || 0), 0)));
  const svg = s("svg", { viewBox: `0 0 ${labelWidth + barArea + 60} ${height}`, role: "img", "aria-labelledby": `${id}-title` });
  rows.forEach((row, i) => {
    const y = i * rowHeight + 4;
    const label = row.label.length > 16 ? `${row.label.slice(0, 15)}…` : row.label;
    svg.append(s("text", { x: 0, y: y + 15 }, label));
    let x = labelWidth;
    let total = 0;
    for (const part of series) {
      const value = row.values[part.key] || 0;
      if (!value) continue;
      const width = (value / max) * barArea;
      const bar = s("rect", { x, y, width: Math.max(width, 1), height: rowHeight - 8, fill: part.color, "data-series": part.key, "data-value": value });
      bar.append(s("title", {}, `${row.label}: ${part.label} ${value}${unit}`));
      svg.append(bar);
      x += width;
      total += value;
    }
    svg.append(s("text", { x: x + 4, y: y + 15 }, `${Math.round(total * 10) / 10}${unit}`));
  });
  let legendX = 0;
  for (const part of series) {
    svg.append(s("rect", { x: legendX, y: height - 18, width: 10, height: 10, fill: part.color }));
    svg.append(s("text", { x: legendX + 14, y: height - 9 }, part.label));
    legendX += 14 + textWidth(part.label) + 12;
  }
  figure.append(svg);
  const table = h(
    "table",
    { class: "visually-hidden" },
    h("caption", { text: title }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "" }), series.map((x) => h("th", { scope: "col", text: x.label })))),
    h("tbody", {}, rows.map((r) => h("tr", {}, h("th", { scope: "row", text: r.label }), series.map((x) => h("td", { text: String(r.values[x.key] || 0) }))))),
  );
  figure.append(table);
  return figure;
}

/** Count items into rows keyed by `rowOf(item)`, with series keyed by `seriesOf(item)`. */
export function tally(items, rowOf, seriesOf, labelOf = (k) => k) {
  const rows = new Map();
  for (const item of items) {
    const key = rowOf(item);
    if (key === null || key === undefined) continue;
    const row = rows.get(key) || { label: labelOf(key), values: {} };
    const series = seriesOf(item);
    row.values[series] = (row.values[series] || 0) + 1;
    rows.set(key, row);
  }
  return [...rows.values()];
}
