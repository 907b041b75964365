// The alarm banner shown on every page while an alarm is active or acknowledged but not
// cleared: how many and the worst severity, linking to the Alarmas page. It refreshes on each
// navigation and every 15 seconds.

import { can, currentUser, get } from './api.js?v=__V__';
import { html } from './dom.js?v=__V__';

const ORDER = ['aviso', 'alarma', 'crítica'];
const banner = document.getElementById('alarm-banner');
let timer = 0;

/** The most severe of `alarms` ('' for none). */
export function worst(alarms) {
  return alarms.reduce((w, a) => (ORDER.indexOf(a.severidad) > ORDER.indexOf(w) ? a.severidad : w), '');
}

function hide() {
  banner.hidden = true;
  banner.className = 'alarm-banner';
  banner.innerHTML = '';
}

/** Fetches the active alarms and shows or hides the banner. */
export async function refreshBanner() {
  clearTimeout(timer);
  if (!currentUser() || !can('VerDashboard')) return hide();
  timer = setTimeout(refreshBanner, 15_000);
  let body;
  try {
    body = await get('/api/dashboard/alarms/');
  } catch {
    return;
  }
  const active = body.activas || [];
  if (!active.length) return hide();
  const sev = worst(active);
  banner.className = `alarm-banner sev-${sev}`;
  banner.innerHTML = html`<span id="alarm-count">${active.length === 1 ? '1 alarma activa' : `${active.length} alarmas activas`}</span>
    · la más grave: <strong id="alarm-worst">${sev}</strong> · <a href="#/alarmas">Ver alarmas</a>`;
  banner.hidden = false;
}

/** Which live channel each reading rule watches. */
const RULE_CHANNEL = {
  temperatura_baja: 'temperatura',
  temperatura_alta: 'temperatura',
  metano_bajo: 'calidad',
  presion_baja: 'presion',
  presion_alta: 'presion',
};

/** The band each channel should stay in, as text for the Panel tiles, from the rules. */
export function channelBands(rules) {
  const r = Object.fromEntries(rules.reglas.filter((x) => x.habilitada).map((x) => [x.regla, x]));
  const out = {};
  const range = (lo, hi, unit) => {
    if (lo && hi) return `Banda ${lo.umbral}–${hi.umbral} ${unit}`;
    if (lo) return `Mínimo ${lo.umbral} ${unit}`;
    if (hi) return `Máximo ${hi.umbral} ${unit}`;
    return '';
  };
  out.temperatura = range(r.temperatura_baja, r.temperatura_alta, '°C');
  out.calidad = range(r.metano_bajo, null, '%');
  out.presion = range(r.presion_baja, r.presion_alta, 'hPa sobre el ambiente');
  return out;
}

/** The worst severity of the active alarms of each channel. */
export function channelAlarms(active) {
  const out = {};
  for (const a of active) {
    const ch = RULE_CHANNEL[a.regla];
    if (ch) out[ch] = worst([a, ...(out[ch] ? [{ severidad: out[ch] }] : [])]);
  }
  return out;
}
