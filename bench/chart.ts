/**
 * A horizontal grouped bar chart as a standalone SVG string, for the ratios
 * `deno task bench` measures (no chart library: a few rectangles and text).
 *
 * @module
 */

/** One bar: a series (a contender) and its value, if measured. */
export interface Bar {
  series: string;
  value: number | undefined;
}

/** One group of bars (a scenario). */
export interface Group {
  label: string;
  bars: Bar[];
}

/** What {@linkcode renderChart} draws. */
export interface Chart {
  title: string;
  groups: Group[];
  /** Where to draw the reference line. @default {1} */
  reference?: number;
  /**
   * The axis ends here at most; longer bars stop at the edge with their
   * value and an arrow, so that one outlier does not flatten the rest.
   *
   * @default {3}
   */
  cap?: number;
  /** A color per series name; others take the palette's. */
  colors?: Record<string, string>;
}

const COLORS = ["#2f6fdb", "#e0832f", "#3a9d5d", "#9b59b6", "#c0392b"];
const LABEL_WIDTH = 330;
const PLOT_WIDTH = 430;
const BAR_HEIGHT = 13;
const BAR_GAP = 3;
const GROUP_GAP = 12;
const LEGEND_TOP = 28;
const LEGEND_ROW = 18;
const LEGEND_COLUMN = 300;
const LEGEND_COLUMNS = 2;

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(
    ">",
    "&gt;",
  );
}

/**
 * Renders the chart.
 *
 * @param chart Title, groups and the reference value.
 * @returns The SVG document.
 *
 * @example
 * ```ts
 * import { renderChart } from "./chart.ts";
 *
 * const svg = renderChart({
 *   title: "Relative to raw Deno",
 *   groups: [{ label: "Echo", bars: [{ series: "anyws", value: 0.97 }] }],
 * });
 * console.log(svg.startsWith("<svg"));
 * ```
 */
export function renderChart(chart: Chart): string {
  const reference = chart.reference ?? 1;
  const series = [
    ...new Set(chart.groups.flatMap((g) => g.bars.map((b) => b.series))),
  ];
  const color = (name: string) =>
    chart.colors?.[name] ?? COLORS[series.indexOf(name) % COLORS.length]!;
  const legendRows = Math.ceil(series.length / LEGEND_COLUMNS);
  const top = LEGEND_TOP + legendRows * LEGEND_ROW + 12;
  const values = chart.groups.flatMap((g) => g.bars.map((b) => b.value ?? 0));
  // The axis ends at the next half unit above the largest value (at least
  // 1.5, at most the cap).
  const max = Math.min(
    chart.cap ?? 3,
    Math.max(1.5, Math.ceil(Math.max(...values, reference) * 2) / 2),
  );
  const x = (value: number) => LABEL_WIDTH + (value / max) * PLOT_WIDTH;

  const parts: string[] = [];
  let y = top;
  for (const group of chart.groups) {
    const height = group.bars.length * (BAR_HEIGHT + BAR_GAP) - BAR_GAP;
    parts.push(
      `<text x="${LABEL_WIDTH - 8}" y="${
        y + height / 2 + 4
      }" text-anchor="end">${escape(group.label)}</text>`,
    );
    for (const bar of group.bars) {
      if (bar.value === undefined) {
        parts.push(
          `<text x="${LABEL_WIDTH + 4}" y="${
            y + BAR_HEIGHT - 3
          }" fill="#888">not measured</text>`,
        );
      } else {
        const clipped = bar.value > max;
        const width = Math.max(1, x(Math.min(bar.value, max)) - LABEL_WIDTH);
        parts.push(
          `<rect x="${LABEL_WIDTH}" y="${y}" width="${
            width.toFixed(1)
          }" height="${BAR_HEIGHT}" fill="${color(bar.series)}"><title>${
            escape(bar.series)
          }: ${bar.value.toFixed(3)}</title></rect>`,
          `<text x="${(LABEL_WIDTH + width + 4).toFixed(1)}" y="${
            y + BAR_HEIGHT - 3
          }" font-size="10">${bar.value.toFixed(2)}${
            clipped ? " ▶" : ""
          }</text>`,
        );
      }
      y += BAR_HEIGHT + BAR_GAP;
    }
    y += GROUP_GAP;
  }
  const bottom = y;

  const grid: string[] = [];
  for (let tick = 0; tick <= max + 1e-9; tick += 0.5) {
    const gx = x(tick).toFixed(1);
    const strong = Math.abs(tick - reference) < 1e-9;
    grid.push(
      `<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${
        bottom - GROUP_GAP + 4
      }" stroke="${strong ? "#333" : "#ddd"}" stroke-width="${
        strong ? 1.5 : 1
      }"${strong ? "" : ' stroke-dasharray="3,3"'}/>`,
      `<text x="${gx}" y="${
        bottom + 6
      }" text-anchor="middle" font-size="10">${tick}×</text>`,
    );
  }
  const legend = series.map((name, i) => {
    const lx = 10 + (i % LEGEND_COLUMNS) * LEGEND_COLUMN;
    const ly = LEGEND_TOP + Math.floor(i / LEGEND_COLUMNS) * LEGEND_ROW;
    return `<rect x="${lx}" y="${ly}" width="12" height="12" fill="${
      color(name)
    }"/><text x="${lx + 16}" y="${ly + 10}">${escape(name)}</text>`;
  });
  const width = LABEL_WIDTH + PLOT_WIDTH + 70;
  const height = bottom + 16;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="18" font-weight="bold">${escape(chart.title)}</text>`,
    ...legend,
    ...grid,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}
