// Alarmas: the alarms not yet cleared (acknowledge with a comment), the history, and the
// site's rules with their thresholds (editable with GestionarAlarmas). Alarm transitions from
// the live feed refresh the page at once; otherwise every 15 seconds.

import { can, get, post, put } from '../api.js?v=__V__';
import { busy, html, toast } from '../dom.js?v=__V__';
import { dateTime } from '../fmt.js?v=__V__';
import { liveFeed } from '../live.js?v=__V__';
import { refreshBanner } from '../alarms.js?v=__V__';

const SEVERITIES = ['aviso', 'alarma', 'crítica'];

function alarmItem(a, manage) {
  const ack = a.reconocida;
  return html`<li class="sev-${a.severidad}" data-alarm="${a.id}">
    <p><strong>${a.titulo || a.regla}</strong> · <span class="tag">${a.severidad}</span> · <span class="estado">${a.estado}</span></p>
    <p>${a.mensaje}</p>
    <p class="muted">Desde ${dateTime(a.desde)}${a.despejada ? html` hasta ${dateTime(a.despejada)}` : ''}</p>
    ${ack ? html`<p class="muted">Reconocida por ${ack.por} el ${dateTime(ack.en)}${ack.comentario ? html`: «${ack.comentario}»` : ''}</p>` : ''}
    ${manage && !ack && !a.despejada ? html`<form class="ack-form" data-id="${a.id}">
      <label>Comentario <input name="comentario" maxlength="500" autocomplete="off"></label>
      <button type="submit" class="btn">Reconocer</button></form>` : ''}
  </li>`;
}

function rulesTable(r, manage) {
  const dis = manage ? '' : 'disabled';
  return html`<form id="rules-form">
    <p><label>Tipo de digestor
      <select name="preset" ${dis}>${r.presets.map((p) => html`<option value="${p}" ${p === r.preset ? 'selected' : ''}>${p === 'tubular' ? 'Tubular sin calefacción' : 'Mesofílico calefaccionado'}</option>`)}</select></label></p>
    <div class="table-wrap"><table class="rules-table"><thead><tr><th>Regla</th><th>Activa</th><th>Severidad</th><th>Umbral</th><th>Duración mínima (s)</th><th>Histéresis</th></tr></thead>
    <tbody>${r.reglas.map((x) => html`<tr data-rule="${x.regla}">
      <td>${x.titulo}</td>
      <td><input type="checkbox" name="habilitada" aria-label="${x.titulo}: activa" ${x.habilitada ? 'checked' : ''} ${dis}></td>
      <td><select name="severidad" aria-label="${x.titulo}: severidad" ${dis}>${SEVERITIES.map((s) => html`<option ${s === x.severidad ? 'selected' : ''}>${s}</option>`)}</select></td>
      <td><input type="number" step="any" name="umbral" aria-label="${x.titulo}: umbral" value="${x.umbral}" ${dis}> ${x.unidad}</td>
      <td><input type="number" min="0" step="1" name="duracion_s" aria-label="${x.titulo}: duración" value="${x.duracion_s}" ${dis}></td>
      <td><input type="number" min="0" step="any" name="histeresis" aria-label="${x.titulo}: histéresis" value="${x.histeresis}" ${dis}></td>
    </tr>`)}</tbody></table></div>
    ${manage ? html`<button type="submit" class="btn">Guardar umbrales</button>` : html`<p class="hint">Cambiar los umbrales requiere el permiso GestionarAlarmas.</p>`}
  </form>`;
}

export function render(main) {
  const manage = can('GestionarAlarmas');
  main.innerHTML = html`<h1>Alarmas</h1>
    <section aria-labelledby="act-h"><h2 id="act-h">Activas</h2><div id="active"><p class="muted">Cargando…</p></div></section>
    <section aria-labelledby="hist-h"><h2 id="hist-h">Historial</h2><div id="history"></div></section>
    <section aria-labelledby="rules-h"><h2 id="rules-h">Reglas y umbrales</h2><div id="rules"></div></section>
    ${manage ? html`<section aria-labelledby="notify-h"><h2 id="notify-h">Notificaciones</h2>
      <p class="hint">Envía un mensaje de prueba por el webhook configurado (ver Estado para su entrega).</p>
      <button type="button" class="btn" id="test-notify">Enviar notificación de prueba</button></section>` : ''}`;
  let alive = true;

  async function loadAlarms() {
    let body;
    try {
      body = await get('/api/dashboard/alarms/');
    } catch (e) {
      if (alive) main.querySelector('#active').innerHTML = html`<p class="card notice error" role="alert">${e.message}</p>`;
      return;
    }
    if (!alive) return;
    main.querySelector('#active').innerHTML = body.activas.length
      ? html`<ul class="alarm-list" id="active-list">${body.activas.map((a) => alarmItem(a, manage))}</ul>`
      : html`<p class="card notice ok" id="no-alarms">No hay alarmas activas.</p>`;
    main.querySelector('#history').innerHTML = body.historial.length
      ? html`<ul class="alarm-list" id="history-list">${body.historial.map((a) => alarmItem(a, false))}</ul>`
      : html`<p class="muted">Sin alarmas despejadas.</p>`;
  }

  async function loadRules() {
    try {
      const r = await get('/api/dashboard/alarms/reglas/');
      if (alive) main.querySelector('#rules').innerHTML = rulesTable(r, manage);
    } catch (e) {
      if (alive) main.querySelector('#rules').innerHTML = html`<p class="card notice error" role="alert">${e.message}</p>`;
    }
  }

  main.querySelector('#test-notify')?.addEventListener('click', async (e) => {
    await busy(e.target, 'Enviando…', async () => {
      try {
        const r = await post('/api/dashboard/alarms/prueba/');
        toast(r.webhook === 'en cola' ? 'Notificación de prueba en camino.' : 'No hay webhook configurado (alarms.webhook_url).');
      } catch (err) {
        toast(err.message, 'error');
      }
    });
  });

  main.addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.target;
    const button = form.querySelector('button[type=submit]');
    if (form.classList.contains('ack-form')) {
      await busy(button, 'Reconociendo…', async () => {
        try {
          await post(`/api/dashboard/alarms/${form.dataset.id}/reconocer/`, { comentario: form.comentario.value });
          toast('Alarma reconocida.');
          await loadAlarms();
          refreshBanner();
        } catch (err) {
          toast(err.message, 'error');
        }
      });
    } else if (form.id === 'rules-form') {
      const reglas = {};
      for (const row of form.querySelectorAll('tr[data-rule]')) {
        const val = (n) => row.querySelector(`[name=${n}]`);
        reglas[row.dataset.rule] = {
          habilitada: val('habilitada').checked,
          severidad: val('severidad').value,
          umbral: Number(val('umbral').value),
          duracion_s: Number(val('duracion_s').value),
          histeresis: Number(val('histeresis').value),
        };
      }
      const preset = form.preset.value;
      await busy(button, 'Guardando…', async () => {
        try {
          // A new digester type resets its thresholds first; the table is saved otherwise.
          const r = await get('/api/dashboard/alarms/reglas/');
          const body = preset !== r.preset ? { preset } : { reglas };
          const saved = await put('/api/dashboard/alarms/reglas/', body);
          if (alive) main.querySelector('#rules').innerHTML = rulesTable(saved, manage);
          toast('Umbrales guardados.');
        } catch (err) {
          toast(err.message, 'error');
        }
      });
    }
  });

  loadAlarms();
  loadRules();
  const feed = liveFeed({
    onMessage: (msg) => {
      if (msg.type === 'alarm') {
        loadAlarms();
        refreshBanner();
      }
    },
    onState: () => {},
  });
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') loadAlarms();
  }, 15_000);
  return () => {
    alive = false;
    feed.stop();
    clearInterval(timer);
  };
}
