// Spanish formatting of numbers, dates and durations. Times from the API carry the site's
// UTC offset (e.g. 2026-03-01T07:12:03.120-05:00); they are shown as the site's wall-clock time
// with that offset in the label, whatever zone the browser is in.

const LOCALE = 'es';
const numberFormats = new Map();

/** Minutes east of UTC of the site, learnt from the last timestamp seen (browser's zone until then). */
let siteOffsetMin = -new Date().getTimezoneOffset();
let offsetKnown = false;

export function num(value, maxDigits = 2, minDigits = 0) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return '—';
  const key = `${maxDigits}/${minDigits}`;
  let f = numberFormats.get(key);
  if (!f) {
    f = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: maxDigits, minimumFractionDigits: minDigits });
    numberFormats.set(key, f);
  }
  return f.format(Number(value));
}

/** A number with `digits` significant digits (for small ratios such as yields). */
export function sig(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return '—';
  const v = Number(value);
  if (v === 0) return '0';
  if (Math.abs(v) >= 10 ** digits) return num(v, 0);
  return new Intl.NumberFormat(LOCALE, { maximumSignificantDigits: digits }).format(v);
}

/** Sensible precision for a measured value of the given magnitude. */
export function measure(value) {
  const a = Math.abs(Number(value));
  if (a >= 1000) return num(value, 1);
  if (a >= 10) return num(value, 2);
  if (a >= 0.01 || a === 0) return num(value, 3);
  return sig(value, 3);
}

/** A volume in m³: two decimals, or three significant digits when it is below 1 m³. */
export function vol(value) {
  const a = Math.abs(Number(value));
  if (a >= 1 || a === 0) return num(value, 2);
  return sig(value, 3);
}

export function pct(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return '—';
  const v = Number(value);
  return `${v > 0 ? '+' : ''}${num(v, digits)} %`;
}

const TS_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** {ms, offsetMin, wall} for an RFC 3339 text; `wall` is a Date whose UTC fields are the site's clock. */
export function parseTs(text) {
  const m = TS_RE.exec(String(text || ''));
  if (!m) return null;
  const [, y, mo, d, h, mi, s = '0', frac = '0', zone] = m;
  const msPart = Number(`0.${frac}`) * 1000;
  const wallMs = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, msPart);
  let off = 0;
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    off = sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2)));
  } else if (!zone) {
    off = siteOffsetMin;
  }
  if (zone) {
    siteOffsetMin = off;
    offsetKnown = true;
  }
  return { ms: wallMs - off * 60_000, offsetMin: off, wall: new Date(wallMs) };
}

export function offsetLabel(min = siteOffsetMin) {
  const sign = min < 0 ? '−' : '+';
  const a = Math.abs(min);
  return `UTC${sign}${String(Math.floor(a / 60)).padStart(2, '0')}:${String(a % 60).padStart(2, '0')}`;
}

/** "hora del sitio, UTC−05:00", or a note that the browser's zone is used until a reading arrives. */
export function zoneNote() {
  return offsetKnown ? `hora del sitio, ${offsetLabel()}` : `hora de este dispositivo, ${offsetLabel()}`;
}

/** A Date whose UTC fields show the site's wall clock at the instant `ms`. */
export function siteWall(ms) {
  return new Date(ms + siteOffsetMin * 60_000);
}

const dtFormat = new Intl.DateTimeFormat(LOCALE, {
  timeZone: 'UTC', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
const dtShort = new Intl.DateTimeFormat(LOCALE, {
  timeZone: 'UTC', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});
const tFormat = new Intl.DateTimeFormat(LOCALE, { timeZone: 'UTC', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
const hmFormat = new Intl.DateTimeFormat(LOCALE, { timeZone: 'UTC', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const dFormat = new Intl.DateTimeFormat(LOCALE, { timeZone: 'UTC', day: 'numeric', month: 'short', year: 'numeric' });
const dmFormat = new Intl.DateTimeFormat(LOCALE, { timeZone: 'UTC', day: 'numeric', month: 'short' });

/** "27 nov 2026, 07:12:03" in the site's time (the offset the API sent). */
export function dateTime(ts) {
  const p = parseTs(ts);
  return p ? dtFormat.format(p.wall) : '—';
}

export function dateTimeShort(ts) {
  const p = parseTs(ts);
  return p ? dtShort.format(p.wall) : '—';
}

export function time(ts) {
  const p = parseTs(ts);
  return p ? tFormat.format(p.wall) : '—';
}

/** Axis/legend labels for epoch seconds, in the site's time. */
export const epoch = {
  hm: (s) => hmFormat.format(siteWall(s * 1000)),
  dm: (s) => dmFormat.format(siteWall(s * 1000)),
  full: (s) => dtShort.format(siteWall(s * 1000)),
};

/** "27 nov 2026" for a calendar date "2026-11-27". */
export function day(date) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(date || ''));
  return m ? dFormat.format(new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]))) : '—';
}

export function dayShort(date) {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(date || ''));
  return m ? dmFormat.format(new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]))) : '—';
}

/** "hace 5 s", "hace 3 min", ... for an age in seconds. */
export function age(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `hace ${s} s`;
  if (s < 3600) return `hace ${Math.floor(s / 60)} min`;
  if (s < 86400 * 2) return `hace ${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `hace ${Math.floor(s / 86400)} días`;
}

/** "3 d 4 h 12 min" for a duration in seconds. */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h ${m} min`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

/** RFC 3339 in UTC for query parameters. */
export function isoUtc(ms) {
  return new Date(ms).toISOString();
}
