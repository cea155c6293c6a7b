// A bar chart over time buckets (uPlot from npm, at /vendor/uplot/): one bar
// per UTC day, week or month. The figures are also in the report's table,
// for screen readers and for anyone who would rather read.

import uPlot from '/vendor/uplot/dist/uPlot.esm.js';

import { h } from '/shared/dom.js';
import { locale } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

// "cms.barChart.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.barChart');

const LABELS = {
  day: { month: 'short', day: 'numeric', timeZone: 'UTC' },
  week: { month: 'short', day: 'numeric', timeZone: 'UTC' },
  month: { month: 'short', year: '2-digit', timeZone: 'UTC' },
};

export class BarChart {
  /**
   * ``format`` writes a value for the summary, ``axis`` a tick; ``counts``
   * keeps the ticks on whole numbers (no half a session).
   */
  constructor({ title, format, axis = format, color = '#0b5cad', height = 220, counts = false }) {
    this.format = format;
    this.period = 'day';
    this.plotBox = h('div', { class: 'chart-plot', role: 'img', 'aria-label': TEXT.noData(title) });
    this.summary = h('p', { class: 'chart-latest' });
    this.element = h('figure', { class: 'chart', 'data-bars': '0' }, h('figcaption', {}, title), this.plotBox, this.summary);
    this.title = title;
    const bars = uPlot.paths.bars({ size: [0.7, 60], align: 0 });
    this.plot = new uPlot(
      {
        width: 600,
        height,
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { show: false } },
        scales: {
          x: { time: false },
          y: { range: (u, min, max) => [0, Math.max(1, (max ?? 0) * 1.15)] },
        },
        axes: [
          {
            stroke: '#4a5563',
            grid: { show: false },
            space: 48,
            values: (u, ticks) => ticks.map((i) => this._label(i)),
            incrs: [1, 2, 3, 4, 6, 7, 12, 14, 28, 31, 61, 92, 183],
          },
          {
            stroke: '#4a5563',
            grid: { stroke: '#e6e9ee' },
            values: (u, ticks) => ticks.map((t) => axis(t)),
            size: 76,
            incrs: counts ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 1e5, 1e6] : undefined,
          },
        ],
        series: [{}, { label: title, stroke: color, fill: `${color}cc`, width: 0, paths: bars, points: { show: false } }],
      },
      [[], []],
      this.plotBox,
    );
    this.starts = [];
    this.resizer = new ResizeObserver(() => this._fit());
    this.resizer.observe(this.element);
  }

  _label(index) {
    const start = this.starts[Math.round(index)];
    if (!start) return '';
    return new Intl.DateTimeFormat(locale(), LABELS[this.period]).format(new Date(start));
  }

  /** ``buckets`` as [{start, value}], ``period`` day, week or month. */
  set(period, buckets) {
    this.period = period;
    this.starts = buckets.map((b) => b.start);
    const xs = buckets.map((_, i) => i);
    const ys = buckets.map((b) => b.value);
    this.plot.setScale('x', { min: -0.5, max: Math.max(0.5, buckets.length - 0.5) });
    this.plot.setData([xs, ys], false);
    this.plot.setScale('x', { min: -0.5, max: Math.max(0.5, buckets.length - 0.5) });
    const total = ys.reduce((a, b) => a + b, 0);
    const peak = ys.length ? Math.max(...ys) : 0;
    const text = TEXT.summary(this.format(total), this.format(peak));
    this.summary.textContent = text;
    this.plotBox.setAttribute('aria-label', TEXT.described(this.title, text));
    this.element.dataset.bars = String(ys.length);
  }

  _fit() {
    const width = this.plotBox.clientWidth;
    if (width > 0 && Math.abs(width - this.plot.width) > 2) {
      this.plot.setSize({ width, height: this.plot.height });
    }
  }

  destroy() {
    this.resizer.disconnect();
    this.plot.destroy();
  }
}
