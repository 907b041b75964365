// The field clock on Panel and Estado: a banner while the appliance's clock is not
// synchronised (readings may land on wrong days until it is), with the reason, and for
// administrators a button that sets the time from this browser's clock. When the time is set
// the appliance re-dates the readings and fillings of the unsynchronised period.

import { can, post } from './api.js?v=__V__';
import { busy, html, toast } from './dom.js?v=__V__';
import { dateTime, isoUtc } from './fmt.js?v=__V__';

/** Renders the banner for `reloj` (from stats or health) into `el`; `onSet` runs after the
 * time was set. Nothing is shown while the clock can be trusted. */
export function clockBanner(el, reloj, onSet) {
  if (!el) return;
  if (!reloj || reloj.sincronizado) {
    el.innerHTML = '';
    return;
  }
  const mayFix = can('AprobarUsuarios') && reloj.se_puede_ajustar;
  el.innerHTML = html`<div class="card notice warn clock-banner" role="alert" id="clock-banner">
    <p><strong>El reloj del equipo no está sincronizado.</strong> ${reloj.motivo || ''}</p>
    <p>Hora del equipo: <strong>${dateTime(reloj.ahora)}</strong> · hora de este navegador:
      <strong>${dateTime(isoUtc(Date.now()))}</strong>.
      Las lecturas se guardan marcadas y se corregirán de fecha cuando la hora se ajuste.</p>
    ${mayFix
      ? html`<p><button type="button" id="clock-set">Ajustar con la hora de este navegador</button></p>`
      : html`<p class="muted">Un administrador puede ajustar la hora desde esta página.</p>`}
  </div>`;
  const button = el.querySelector('#clock-set');
  if (!button) return;
  button.addEventListener('click', () =>
    busy(button, 'Ajustando…', async () => {
      try {
        const r = await post('/api/admin/reloj/', { ahora_ms: Date.now() });
        toast(r.detail, 'ok');
        if (onSet) onSet(r.reloj);
      } catch (e) {
        toast(e.message, 'error');
      }
    }),
  );
}
