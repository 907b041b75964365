// Estado, section "Envío a la central": the bridge to a central MQTT broker (connected or
// not, refused credentials, last error, readings waiting and the oldest one's age, forwarded
// rate, readings lost to a critically full disk). Nothing when the bridge is off.

import { get } from '../api.js?v=__V__';
import { html } from '../dom.js?v=__V__';
import { age, dateTime, num } from '../fmt.js?v=__V__';

/** Fills `el` with the bridge's status; empties it when the bridge is off. */
export async function loadBridge(el) {
  let b;
  try {
    b = await get('/api/puente/');
  } catch (e) {
    el.innerHTML = html`<p class="card notice error" role="alert">${e.message}</p>`;
    return;
  }
  if (!b.activo) {
    el.innerHTML = '';
    return;
  }
  const state = b.conectado
    ? html`<span class="tag ok">conectado</span>`
    : html`<span class="tag bad">${b.credenciales_rechazadas ? 'credenciales rechazadas' : 'sin conexión'}</span>`;
  const oldest = b.antiguedad_pendiente_s;
  el.innerHTML = html`<h3>Envío a la central</h3><dl class="stats" id="bridge-list">
    <div class="${b.conectado ? 'good' : 'bad'}" id="br-state"><dt>Broker central</dt><dd>${state}
      <br><small>${b.destino}${b.tls ? ' (TLS)' : ''} · ${b.topicos}/…</small></dd></div>
    <div class="${b.pendientes > 0 && !b.conectado ? 'warnbox' : ''}" id="br-waiting"><dt>Lecturas por enviar</dt><dd>${num(b.pendientes, 0)}
      ${oldest === null || oldest === undefined ? '' : html`<br><small>la más antigua de hace ${age(oldest)}</small>`}</dd></div>
    <div id="br-rate"><dt>Ritmo de envío</dt><dd>${num(b.lecturas_por_s, 1)} lecturas/s
      <br><small>${num(b.reenviadas, 0)} enviadas desde el arranque${b.bytes_por_lectura ? ` · ${num(b.bytes_por_lectura, 0)} bytes por lectura` : ''}</small></dd></div>
    ${b.ultimo_error ? html`<div class="${b.conectado ? '' : 'bad'}" id="br-error"><dt>Último error</dt><dd>${b.ultimo_error}
      <br><small>${b.ultimo_error_en ? dateTime(b.ultimo_error_en) : ''}${!b.conectado && b.proximo_intento ? ` · nuevo intento: ${dateTime(b.proximo_intento)}` : ''}</small></dd></div>` : ''}
    ${b.perdidas_por_disco_lleno > 0 ? html`<div class="bad" id="br-lost"><dt>Perdidas sin enviar</dt><dd>${num(b.perdidas_por_disco_lleno, 0)}
      <br><small>Borradas con el disco lleno antes de enviarse${b.hueco_seq ? ` (seq ${b.hueco_seq.desde} a ${b.hueco_seq.hasta})` : ''}.</small></dd></div>` : ''}
  </dl>`;
}
