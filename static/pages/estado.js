// Estado: the appliance's health (store, writer, clock), version, uptime, live clients, the
// store's room (size, free space, days until full, oldest reading, last prune) and the ingest
// counters (readings, rejected and lost messages). Refreshes every 10 seconds.

import { can, get, serverNow } from '../api.js?v=__V__';
import { html } from '../dom.js?v=__V__';
import { clockBanner } from '../clock.js?v=__V__';
import { loadBridge } from './puente.js?v=__V__';
import { age, dateTime, duration, num, parseTs, zoneNote } from '../fmt.js?v=__V__';

function okTag(ok, good, bad) {
  return ok ? html`<span class="tag ok">${good}</span>` : html`<span class="tag bad">${bad}</span>`;
}

/** Bytes as kB/MB/GB (decimal units, as disks are sold); '—' when unknown. */
function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = [['GB', 1e9], ['MB', 1e6], ['kB', 1e3]];
  for (const [unit, size] of units) if (n >= size) return `${num(n / size, 1)} ${unit}`;
  return `${num(n, 0)} B`;
}

/** The store's room, from the health details; nothing when the service did not send it. */
function storageList(st) {
  if (!st) return '';
  const days = st.days_until_full;
  const low = days !== null && days !== undefined && days < 30;
  return html`<h3>Almacenamiento</h3><dl class="stats" id="storage-list">
    <div><dt>Base de datos</dt><dd id="st-store">${bytes(st.store_bytes)}</dd></div>
    <div><dt>Espacio libre en el disco</dt><dd id="st-free">${bytes(st.free_bytes)}${st.filesystem_bytes ? html`<br><small>de ${bytes(st.filesystem_bytes)}</small>` : ''}</dd></div>
    <div class="${low ? 'warnbox' : ''}"><dt>Días hasta llenarse</dt><dd id="st-days">${days === null || days === undefined ? '—' : num(days, days < 10 ? 1 : 0)}
      <br><small>${days === null || days === undefined ? 'La base de datos no está creciendo, o aún no hay una hora de medidas.' : `Al ritmo de las últimas 24 h (${bytes(st.growth_bytes_per_day)} por día).`}</small></dd></div>
    <div><dt>Lectura más antigua guardada</dt><dd id="st-oldest">${st.oldest_reading ? dateTime(st.oldest_reading) : 'ninguna'}</dd></div>
    <div><dt>Última depuración</dt><dd id="st-prune">${st.last_prune ? html`${dateTime(st.last_prune)}<br><small>${num(st.pruned_total, 0)} lecturas depuradas en total</small>` : 'nunca'}</dd></div>
  </dl>`;
}

/** The alarm webhook's deliveries; nothing when none is configured. */
function channelRows(name, w, id) {
  const failing = w.pendientes > 0 && w.ultimo_error;
  return html`<div class="${failing ? 'bad' : ''}"><dt>${name}</dt><dd id="${id}-state">${failing ? html`<span class="tag bad">fallando</span><br><small>${w.ultimo_error}${w.ultimo_error_en ? html` (${dateTime(w.ultimo_error_en)})` : ''}</small>` : html`<span class="tag ok">al día</span>`}</dd></div>
    <div><dt>Mensajes en espera</dt><dd id="${id}-pending">${num(w.pendientes, 0)}</dd></div>
    <div><dt>Último envío</dt><dd id="${id}-sent">${w.ultimo_envio ? dateTime(w.ultimo_envio) : 'ninguno'}</dd></div>`;
}

function notificationList(n) {
  if (!n || (!n.webhook && !n.correo)) return '';
  return html`<h3>Notificaciones de alarmas</h3><dl class="stats" id="notify-list">
    ${n.webhook ? channelRows('Webhook', n.webhook, 'nt') : ''}${n.correo ? channelRows('Correo', n.correo, 'ml') : ''}
  </dl>`;
}

export function render(main) {
  main.innerHTML = html`<h1>Estado del equipo</h1>
    <div id="clock"></div>
    <section aria-labelledby="health-h"><h2 id="health-h">Servicio</h2><div id="health"><p class="muted">Cargando…</p></div></section>
    ${can('VerDashboard') ? html`<section aria-labelledby="counts-h"><h2 id="counts-h">Lecturas y mensajes</h2><div id="counts"><p class="muted">Cargando…</p></div><div id="bridge"></div></section>` : ''}
    <p class="hint" id="refreshed"></p>`;
  let alive = true;

  async function loadHealth() {
    const el = main.querySelector('#health');
    let h;
    try {
      // With the session's token: without one, /healthz only says whether all is well.
      h = await get('/healthz');
    } catch (e) {
      // 503 still carries the body describing what fails
      h = e.body && e.body.status ? e.body : null;
      if (!h) {
        if (alive) el.innerHTML = html`<p class="card notice error" role="alert">${e.message}</p>`;
        return;
      }
    }
    if (!alive) return;
    clockBanner(main.querySelector('#clock'), h.reloj, () => loadHealth());
    const reloj = h.reloj || {};
    const clockNote = reloj.estado === 'ajustado'
      ? 'Ajustado por un administrador con la hora de su navegador (sin NTP).'
      : 'El equipo no tiene la hora correcta (sin red/NTP): las lecturas quedan marcadas y se corregirán de fecha al ajustar la hora.';
    el.innerHTML = html`<dl class="stats" id="health-list">
      <div class="${h.status === 'ok' ? 'good' : 'bad'}"><dt>Estado general</dt><dd>${okTag(h.status === 'ok', 'correcto', 'con fallos')}</dd></div>
      <div><dt>Base de datos</dt><dd>${okTag(h.store === 'ok', 'responde', 'no responde')}</dd></div>
      <div><dt>Escritura de lecturas</dt><dd>${okTag(h.writer === 'ok', 'guardando', 'fallando')}</dd></div>
      <div class="${h.clock_ok ? '' : 'bad'}" id="clock-state"><dt>Reloj</dt><dd>${okTag(h.clock_ok, reloj.estado === 'ajustado' ? 'ajustado' : 'en hora', 'sin sincronizar')}
        ${h.clock_ok && reloj.estado !== 'ajustado' ? '' : html`<br><small>${clockNote}</small>`}</dd></div>
      <div><dt>Versión</dt><dd>${h.version}</dd></div>
      <div><dt>En marcha desde hace</dt><dd>${duration(h.uptime_s)}</dd></div>
      <div><dt>Navegadores en vivo</dt><dd>${num(h.ws_clients, 0)}</dd></div>
    </dl>${storageList(h.storage)}${notificationList(h.notificaciones)}`;
  }

  async function loadCounts() {
    const el = main.querySelector('#counts');
    if (!el) return;
    let s;
    try {
      s = await get('/api/dashboard/stats/');
    } catch (e) {
      if (alive) el.innerHTML = html`<p class="card notice error" role="alert">${e.message}</p>`;
      return;
    }
    if (!alive) return;
    const last = s.ultima_lectura && parseTs(s.ultima_lectura);
    el.innerHTML = html`<dl class="stats" id="stats-list">
      <div><dt>Lecturas hoy</dt><dd>${num(s.lecturas_hoy, 0)}</dd></div>
      <div><dt>Lecturas en total</dt><dd>${num(s.lecturas_total, 0)}</dd></div>
      <div><dt>Última lectura</dt><dd>${last ? html`${age((serverNow() - last.ms) / 1000)}<br><small>${dateTime(s.ultima_lectura)}</small>` : 'ninguna'}</dd></div>
      <div><dt>Llenados activos</dt><dd>${num(s.etapas_activas, 0)}</dd></div>
      <div><dt>Reportes generados</dt><dd>${num(s.reportes_generados, 0)}</dd></div>
      <div class="${s.mensajes_rechazados > 0 ? 'warnbox' : ''}"><dt>Mensajes rechazados</dt><dd>${num(s.mensajes_rechazados, 0)}
        <br><small>Mensajes de sensores con formato o valores no válidos.</small></dd></div>
      <div class="${s.mensajes_perdidos > 0 ? 'bad' : ''}"><dt>Mensajes perdidos</dt><dd>${num(s.mensajes_perdidos, 0)}
        <br><small>Descartados porque llegaban más rápido de lo que se podían guardar.</small></dd></div>
    </dl>`;
  }

  async function refresh() {
    const bridge = main.querySelector('#bridge');
    await Promise.all([loadHealth(), loadCounts(), bridge ? loadBridge(bridge) : null]);
    if (alive) main.querySelector('#refreshed').textContent = `Se actualiza cada 10 s. Horas: ${zoneNote()}.`;
  }
  refresh();
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') refresh();
  }, 10_000);
  return () => {
    alive = false;
    clearInterval(timer);
  };
}
