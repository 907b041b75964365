// Sensores: every MQTT client the appliance knows, for the installer in the field — connected
// or not and from which address, last connection, age of its last data (a sensor silent for
// more than 15 minutes, or that never sent anything, stands out), accepted and refused messages
// with the last reason in plain Spanish, and the fields it sends. Refreshes every 10 seconds.

import { get } from '../api.js?v=__V__';
import { html } from '../dom.js?v=__V__';
import { age, dateTime, num, parseTs, zoneNote } from '../fmt.js?v=__V__';

/** Silence after which a sensor is flagged, in seconds. */
const SILENT_S = 15 * 60;

/** The appliance's refusal codes, as an installer would say them. */
const REASONS = {
  bad_credentials: 'usuario o clave incorrectos',
  not_authorized: 'no autorizado',
  oversize: 'mensaje demasiado grande',
  topic_not_allowed: 'tópico no permitido',
  topic_not_stored: 'tópico no almacenado',
  invalid_payload: 'datos inválidos',
  protocol_version: 'versión de MQTT no soportada',
  identifier_rejected: 'identificador rechazado',
  broker_full: 'broker lleno',
  user_full: 'demasiadas conexiones del usuario',
  throttled: 'demasiados intentos fallidos',
};

function reasonText(code) {
  return REASONS[code] || String(code || '').replace(/_/g, ' ');
}

/** Whether the sensor's data is missing or too old. */
function isSilent(s) {
  return s.silencio_s === null || s.silencio_s === undefined || s.silencio_s > SILENT_S;
}

/** "hace 2 h 5 min" without the "hace", for "sin datos hace …". */
function lastData(s) {
  if (s.silencio_s === null || s.silencio_s === undefined) return html`<span class="tag warn">⚠ nunca envió datos</span>`;
  if (isSilent(s)) return html`<span class="tag warn">⚠ sin datos ${age(s.silencio_s)}</span>`;
  return html`último dato ${age(s.silencio_s)}`;
}

function card(s) {
  const silent = isSilent(s);
  const classes = ['card', 'sensor', s.conectado ? 'on' : 'off', silent ? 'silent' : ''].filter(Boolean).join(' ');
  return html`<li class="${classes}" data-client="${s.client_id}">
    <div class="sensor-head">
      <h3>${s.client_id || html`<span class="muted">(sin identificador)</span>`}</h3>
      ${s.conectado ? html`<span class="tag ok">conectado</span>` : html`<span class="tag bad">desconectado</span>`}
    </div>
    <p class="last">${lastData(s)}</p>
    <dl class="kv">
      <div class="wide"><dt>Dirección</dt><dd class="addr">${s.direccion || '—'}</dd></div>
      <div><dt>Usuario MQTT</dt><dd>${s.usuario || html`<span class="muted">ninguno</span>`}</dd></div>
      <div><dt>Última conexión</dt><dd>${s.ultima_conexion ? dateTime(s.ultima_conexion) : 'nunca'}</dd></div>
      <div><dt>Último dato</dt><dd>${s.ultimo_mensaje ? dateTime(s.ultimo_mensaje) : 'nunca'}</dd></div>
      <div><dt>Mensajes aceptados</dt><dd class="count">${num(s.aceptados, 0)}</dd></div>
      <div><dt>Rechazados</dt><dd class="count">${num(s.rechazados, 0)}</dd></div>
      ${s.ultimo_rechazo ? html`<div class="wide"><dt>Último rechazo</dt><dd class="reason">${reasonText(s.ultimo_rechazo)}
        ${s.ultimo_rechazo_en ? html`<small class="muted">(${dateTime(s.ultimo_rechazo_en)})</small>` : ''}</dd></div>` : ''}
      <div class="wide"><dt>Campos que envía</dt><dd class="fields">${(s.campos || []).length
        ? s.campos.map((c) => html`<span class="tag">${c}</span> `)
        : html`<span class="muted">ninguno todavía</span>`}</dd></div>
    </dl>
  </li>`;
}

export function render(main) {
  main.innerHTML = html`<h1>Sensores</h1>
    <p class="hint">Los sensores aparecen aquí al conectarse al broker MQTT del equipo. Se destaca el que lleva más de 15 minutos sin enviar datos.</p>
    <div id="sensors-summary"></div>
    <div id="sensors"><p class="muted">Cargando…</p></div>
    <p class="hint" id="refreshed"></p>`;
  const listEl = main.querySelector('#sensors');
  const summaryEl = main.querySelector('#sensors-summary');
  let alive = true;

  async function load() {
    let body;
    try {
      body = await get('/api/dashboard/sensors/');
    } catch (e) {
      if (alive) listEl.innerHTML = html`<p class="card notice error" role="alert">${e.message}</p>`;
      return;
    }
    if (!alive) return;
    parseTs(body.ahora); // learns the site's UTC offset even when no sensor has a time yet
    const list = body.sensores || [];
    const connected = list.filter((s) => s.conectado).length;
    const silent = list.filter(isSilent).length;
    summaryEl.innerHTML = list.length
      ? html`<dl class="stats" id="sensors-stats">
          <div><dt>Sensores</dt><dd>${num(list.length, 0)}</dd></div>
          <div class="${connected ? 'good' : ''}"><dt>Conectados</dt><dd>${num(connected, 0)}</dd></div>
          <div class="${silent ? 'warnbox' : ''}"><dt>Sin datos recientes</dt><dd>${num(silent, 0)}</dd></div>
        </dl>`
      : '';
    listEl.innerHTML = list.length
      ? html`<ul class="sensor-list" id="sensor-list">${list.map(card)}</ul>`
      : html`<p class="card notice">Todavía no se ha conectado ningún sensor. Revisa que el sensor use la dirección de este equipo, el puerto MQTT y su usuario y clave.</p>`;
    main.querySelector('#refreshed').textContent = `Se actualiza cada 10 s. Horas: ${zoneNote()}.`;
  }

  load();
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') load();
  }, 10_000);
  return () => {
    alive = false;
    clearInterval(timer);
  };
}
