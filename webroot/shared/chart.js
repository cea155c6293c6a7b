// A live time-series chart (uPlot from npm, served at /vendor/uplot/): one
// line, points appended as events arrive, the last ``maxPoints`` kept. The
// latest value is also written out as text: the chart is for the eye, the
// text for screen readers and for anyone who would rather read.

import uPlot from '/vendor/uplot/dist/uPlot.esm.js';

import { h } from './dom.js';
import { formatTime } from './format.js';
import { messages } from './i18n.js';

const TEXT = messages('chart');

/** A colour of the stylesheet's theme (light or dark, shared/style.css), as "#rrggbb". */
function css(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return /^#[0-9a-f]{6}$/i.test(value) ? value : fallback;
}

/**
 * Ticks of a session's time axis as the reader's clock reads them: hours and
 * minutes, or minutes and seconds while the ticks are less than a minute apart. A
 * session is hours long, so no date (which crowded a phone's axis).
 */
function clockTicks(ticks) {
  const step = ticks.length > 1 ? ticks[1] - ticks[0] : 60;
  const options = step < 60 ? { minute: '2-digit', second: '2-digit' } : { hour: 'numeric', minute: '2-digit' };
  const format = new Intl.DateTimeFormat(navigator.languages?.[0] || navigator.language || 'en', options);
  return ticks.map((t) => format.format(new Date(t * 1000)));
}

export class LiveChart {
  /**
   * ``format`` writes a value for reading, ``axis`` a tick (shorter); ``floor``
   * is the smallest top of the y scale, so that an idle line sits at the
   * bottom of a labelled scale instead of a stack of identical ticks.
   * ``fromZero`` false lets the scale follow the values (a meter register).
   * ``timeRange`` () -> [from, to] in epoch seconds fixes the time axis (a
   * session's own span), so one point is not drawn on an axis of years;
   * ``clock`` false keeps uPlot's own date ticks for it (a span of days).
   */
  constructor({ title, label, format, axis = format, floor = 1, fromZero = true, color = null, maxPoints = 600, height = 220, timeRange = null, clock = true }) {
    color = color || css('--chart-line', '#1565c0');
    this.format = format;
    this.maxPoints = maxPoints;
    this.xs = [];
    this.ys = [];
    this.latest = h('p', { class: 'chart-latest', 'aria-live': 'off' }, TEXT.waiting);
    this.plotBox = h('div', { class: 'chart-plot', role: 'img', 'aria-label': TEXT.noValues(title) });
    this.element = h(
      'figure',
      { class: 'chart', 'data-points': '0' },
      h('figcaption', {}, title),
      this.plotBox,
      this.latest,
    );
    this.plot = new uPlot(
      {
        width: 600,
        height,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: {
          x: timeRange
            ? {
                time: true,
                range: (u, min, max) => {
                  const [from, to] = timeRange();
                  return [Math.min(from, min ?? from), Math.max(to, max ?? to, from + 60)];
                },
              }
            : { time: true },
          y: {
            range: (u, min, max) => {
              if (fromZero || min === null || min === undefined) return [0, Math.max(floor, (max ?? 0) * 1.15)];
              const pad = Math.max(floor / 2, (max - min) * 0.1);
              return [Math.max(0, min - pad), max + pad];
            },
          },
        },
        axes: [
          timeRange && clock
            ? { stroke: css('--chart-axis', '#4a5563'), grid: { stroke: css('--chart-grid', '#e6e9ee') }, space: 70, values: (u, ticks) => clockTicks(ticks) }
            : { stroke: css('--chart-axis', '#4a5563'), grid: { stroke: css('--chart-grid', '#e6e9ee') } },
          { stroke: css('--chart-axis', '#4a5563'), grid: { stroke: css('--chart-grid', '#e6e9ee') }, values: (u, ticks) => ticks.map((t) => axis(t)), size: 84 },
        ],
        series: [{}, { label, stroke: color, width: 2, fill: `${color}22`, points: { show: true, size: 5 } }],
      },
      [[], []],
      this.plotBox,
    );
    this.resizer = new ResizeObserver(() => this._fit());
    this.resizer.observe(this.element);
  }

  /** Add a value at ``at`` (a Date, an ISO string or epoch milliseconds). */
  push(at, value) {
    if (value === null || value === undefined) return;
    const x = new Date(at).getTime() / 1000;
    const last = this.xs.length - 1;
    if (last >= 0 && x < this.xs[last]) return; // late, out-of-order sample
    if (last >= 0 && x === this.xs[last] && value === this.ys[last]) return; // seen (a replayed push)
    this.xs.push(x);
    this.ys.push(value);
    if (this.xs.length > this.maxPoints) {
      this.xs.shift();
      this.ys.shift();
    }
    this.plot.setData([this.xs, this.ys]);
    this._written(x, value);
    this.element.dataset.points = String(this.xs.length);
  }

  /** Replace the whole series: ``points`` as [[at, value], ...] in time order (a reload's history). */
  setPoints(points) {
    this.xs = [];
    this.ys = [];
    for (const [at, value] of points) {
      if (value === null || value === undefined) continue;
      const x = new Date(at).getTime() / 1000;
      if (this.xs.length && x <= this.xs[this.xs.length - 1]) continue;
      this.xs.push(x);
      this.ys.push(value);
    }
    this.xs = this.xs.slice(-this.maxPoints);
    this.ys = this.ys.slice(-this.maxPoints);
    this.plot.setData([this.xs, this.ys]);
    const last = this.xs.length - 1;
    if (last >= 0) this._written(this.xs[last], this.ys[last]);
    this.element.dataset.points = String(this.xs.length);
  }

  /** Redraw the axes (the time range of a running session grows). */
  redraw() {
    this.plot.setData([this.xs, this.ys]);
  }

  _written(x, value) {
    const text = this.format(value);
    this.latest.textContent = TEXT.latest(text, formatTime(new Date(x * 1000).toISOString()));
    this.plotBox.setAttribute('aria-label', TEXT.latestOf(this.element.querySelector('figcaption').textContent, text));
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
