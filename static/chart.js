// Charts on uPlot: sized to their container, axes and legend in Spanish and in the site's time.

import uPlot from './vendor/uplot/uPlot.esm.js?v=__V__';
import { epoch, measure } from './fmt.js?v=__V__';

const AXIS = { stroke: '#3c4a3f', grid: { stroke: '#e3e8e4', width: 1 }, ticks: { stroke: '#c9d1cb', width: 1 }, font: '12px system-ui, sans-serif' };

function timeValues(u, splits, axisIdx, space, incr) {
  let lastDay = '';
  return splits.map((s) => {
    if (incr >= 86400) return epoch.dm(s);
    const d = epoch.dm(s);
    const label = d !== lastDay && lastDay !== '' ? `${epoch.hm(s)}\n${d}` : epoch.hm(s);
    lastDay = d;
    return label;
  });
}

const numValues = (u, splits) => splits.map((v) => (v === null ? '' : measure(v)));

/** Width of the y axis from its longest label, so small numbers are never cut. */
function ySize(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (cycleNum > 1) return axis._size;
  const longest = (values || []).reduce((m, v) => Math.max(m, String(v).length), 0);
  return Math.max(40, Math.ceil(longest * 7.2) + 18 + (axis.label ? 18 : 0));
}

/**
 * A chart in `el`. `series`: [{label, color, dash, fill, bars, width, points, show}]; points are
 * drawn by uPlot when the data is sparse enough, unless `points` says otherwise.
 * `x`: {time: true} for epoch seconds, or {label(v) for the legend, tick(v) for the axis}.
 */
export function chart(el, { x = { time: true }, series, bands, height = 200, yLabel = '', hooks = {}, legend = true, xRange }, data) {
  const cfgSeries = [
    {
      label: x.time ? 'Hora' : x.name || 'x',
      value: (u, v) => (v === null || v === undefined ? '—' : x.time ? epoch.full(v) : x.label ? x.label(v) : measure(v)),
    },
    ...series.map((s) => ({
      label: s.label,
      stroke: s.color,
      width: s.width ?? 2,
      dash: s.dash,
      fill: s.fill,
      show: s.show ?? true,
      points: s.points,
      paths: s.bars ? uPlot.paths.bars({ size: [0.7, 40], align: 0 }) : undefined,
      value: (u, v) => (v === null || v === undefined ? '—' : measure(v)),
      spanGaps: false,
    })),
  ];
  const opts = {
    width: Math.max(200, el.clientWidth),
    height,
    series: cfgSeries,
    bands,
    legend: { show: legend, live: true },
    cursor: { drag: { x: false, y: false }, points: { size: 6 } },
    scales: { x: xRange ? { time: !!x.time, range: () => xRange } : { time: !!x.time } },
    axes: [
      { ...AXIS, values: x.time ? timeValues : x.tick ? (u, splits) => splits.map(x.tick) : numValues, space: x.time ? 60 : 40,
        label: x.axisLabel, labelSize: x.axisLabel ? 20 : 0, labelFont: '12px system-ui, sans-serif' },
      { ...AXIS, values: numValues, size: ySize, label: yLabel, labelSize: yLabel ? 18 : 0, labelFont: '12px system-ui, sans-serif' },
    ],
    hooks,
  };
  el.classList.add('chart');
  const u = new uPlot(opts, data, el);
  let lastW = el.clientWidth;
  const ro = new ResizeObserver(() => {
    const w = el.clientWidth;
    if (w > 0 && w !== lastW) {
      lastW = w;
      u.setSize({ width: w, height });
    }
  });
  ro.observe(el);
  return {
    u,
    setData: (d) => u.setData(d),
    destroy: () => {
      ro.disconnect();
      u.destroy();
    },
  };
}

/** Fills the plotting area behind the days listed in `isMissing(index)` with a hatched band. */
export function missingDaysHook(isMissing) {
  return {
    drawClear: [
      (u) => {
        const { ctx } = u;
        const xs = u.data[0];
        if (!xs || xs.length === 0) return;
        const step = xs.length > 1 ? u.valToPos(xs[1], 'x', true) - u.valToPos(xs[0], 'x', true) : u.bbox.width / 2;
        ctx.save();
        ctx.fillStyle = 'rgba(120, 120, 120, 0.16)';
        for (let i = 0; i < xs.length; i++) {
          if (!isMissing(i)) continue;
          const cx = u.valToPos(xs[i], 'x', true);
          ctx.fillRect(cx - step / 2, u.bbox.top, step, u.bbox.height);
        }
        ctx.restore();
      },
    ],
  };
}

