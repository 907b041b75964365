// Llenados: the filling stages. Create one (the API's defaults for date, number and people are
// explained beside their fields, and its validation messages are shown under each field),
// edit or close the active stage, and list every stage.

import { can, get, patch, post } from '../api.js?v=__V__';
import { materialName } from '../channels.js?v=__V__';
import { busy, clearErrors, confirmDialog, html, showErrors, toast } from '../dom.js?v=__V__';
import { dateTime, day, num } from '../fmt.js?v=__V__';

const NUMERIC = ['number', 'material_amount_kg', 'material_humidity_pct', 'added_water_m3', 'temperature_c'];

function input(name, label, { hint = '', required = false, type = 'text', decimal = false, value = '' } = {}) {
  const id = `f-${name}`;
  return html`<div class="field">
    <label for="${id}">${label}${required ? '' : html` <span class="muted">(opcional)</span>`}</label>
    <input id="${id}" name="${name}" type="${type}" ${required ? 'required' : ''} ${decimal ? html`inputmode="decimal" autocomplete="off"` : ''}
      value="${value}" ${hint ? html`aria-describedby="${id}-hint"` : ''}>
    ${hint ? html`<p class="hint" id="${id}-hint">${hint}</p>` : ''}
  </div>`;
}

/** The model parameters of a material, with their sources folded away. */
function materialHint(m) {
  if (!m) return '';
  return html`Modelo: SV/ST ${num(m.vs_ts, 2)} · B0 ${num(m.b0_m3_ch4_per_kg_vs, 3)} Nm³ CH₄/kg SV · metano ${num(m.methane_fraction * 100, 0)} % ·
    latencia ${num(m.lag_days, 1)} d · k ${num(m.k_per_day, 3)}/d
    ${m.source ? html`<details class="source"><summary>Fuentes</summary>${m.source}</details>` : ''}`;
}

/** Parses the form: decimal commas accepted; empty optional fields are left out. */
function readForm(form) {
  const body = {};
  const errors = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    const v = el.value.trim();
    if (v === '') continue;
    if (NUMERIC.includes(el.name)) {
      const n = Number(v.replace(/\s/g, '').replace(',', '.'));
      if (!Number.isFinite(n)) errors[el.name] = ['Escribe un número (por ejemplo 1200 o 12,5).'];
      else body[el.name] = el.name === 'number' ? Math.round(n) : n;
    } else body[el.name] = v;
  }
  return { body, errors };
}

export function render(main) {
  const manage = can('GestionarLlenados');
  main.innerHTML = html`<h1>Llenados</h1>
    <div id="active"></div>
    ${manage ? html`<section aria-labelledby="new-h" id="new-section"><h2 id="new-h">Nuevo llenado</h2><div id="form-slot"><p class="muted">Cargando…</p></div></section>`
      : html`<p class="muted">Tu cuenta puede ver los llenados pero no crearlos ni cerrarlos (permiso GestionarLlenados).</p>`}
    <section aria-labelledby="list-h"><h2 id="list-h">Todos los llenados</h2><div id="list"><p class="muted">Cargando…</p></div></section>`;
  const activeEl = main.querySelector('#active');
  const listEl = main.querySelector('#list');
  let materials = {};
  let stages = [];
  let alive = true;

  function active() {
    return stages.find((s) => s.active);
  }

  function formHtml(mode, s = {}) {
    const nextNumber = stages.reduce((m, x) => Math.max(m, Number(x.number) || 0), 0) + 1;
    const keys = Object.keys(materials);
    const edit = mode === 'edit';
    return html`<form class="card form" id="${edit ? 'edit-form' : 'stage-form'}" novalidate>
      <p class="form-error" role="alert" tabindex="-1" hidden></p>
      ${!edit && active() ? html`<p class="notice warn">Al crear un llenado nuevo se <strong>cierra el llenado activo N.º ${active().number}</strong>.</p>` : ''}
      <div class="grid3">
        ${input('date', 'Fecha de carga', { type: 'date', value: s.date || '', hint: edit ? '' : 'Vacía: hoy, en la zona horaria del sitio.' })}
        ${input('number', 'Número de llenado', { decimal: true, value: s.number ?? '', hint: edit ? '' : `Vacío: el siguiente al último (N.º ${nextNumber}).` })}
        ${input('people', 'Personas que cargaron', { value: s.people || '', hint: edit ? '' : 'Vacío: «Sin especificar».' })}
      </div>
      <div class="grid3">
        <div class="field">
          <label for="f-material_type">Tipo de material</label>
          <select id="f-material_type" name="material_type" required aria-describedby="f-material_type-hint">
            ${edit ? '' : html`<option value="">${keys.length ? '— Elige el material —' : '(no se pudo leer la lista)'}</option>`}
            ${keys.map((k) => html`<option value="${k}" ${k === s.material_type ? 'selected' : ''}>${materialName(k)}</option>`)}
          </select>
          <div class="hint" id="f-material_type-hint">${materialHint(materials[s.material_type])}</div>
        </div>
        ${input('material_amount_kg', 'Cantidad de material (kg)', { required: true, decimal: true, value: s.material_amount_kg ?? '' })}
        ${input('material_humidity_pct', 'Humedad del material (%)', { required: true, decimal: true, value: s.material_humidity_pct ?? '', hint: 'Entre 0 y 100.' })}
        ${input('added_water_m3', 'Agua añadida (m³)', { required: true, decimal: true, value: s.added_water_m3 ?? '' })}
        ${input('temperature_c', 'Temperatura del digestor (°C)', { required: true, decimal: true, value: s.temperature_c ?? '', hint: 'Sirve para estimar la velocidad de producción.' })}
      </div>
      <div class="actions">
        ${edit ? html`<button type="button" class="btn btn-quiet" data-act="cancel-edit">Cancelar</button>` : ''}
        <button type="submit" class="btn btn-primary">${edit ? 'Guardar cambios' : 'Crear llenado'}</button>
      </div>
    </form>`;
  }

  function wireMaterialHint(form) {
    const selEl = form.elements.material_type;
    selEl.addEventListener('change', () => {
      form.querySelector('#f-material_type-hint').innerHTML = materialHint(materials[selEl.value]);
    });
  }

  function renderForm() {
    const slot = main.querySelector('#form-slot');
    if (!slot) return;
    slot.innerHTML = formHtml('new');
    const form = slot.querySelector('form');
    wireMaterialHint(form);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const { body, errors } = readForm(form);
      if (Object.keys(errors).length) return showErrors(form, { message: 'Revisa los datos del formulario.', fields: errors });
      const current = active();
      if (current) {
        const ok = await confirmDialog({
          title: 'Crear un llenado nuevo',
          body: `El llenado activo N.º ${current.number} se cerrará y las lecturas nuevas contarán para el llenado nuevo. ¿Continuar?`,
          confirm: 'Crear y cerrar el activo',
        });
        if (!ok) return;
      }
      try {
        const r = await busy(form.querySelector('[type=submit]'), 'Creando…', () => post('/api/dashboard/fillings/', body));
        const closed = r.closed_previous ? ` Se cerró el llenado N.º ${r.closed_previous.number}.` : '';
        toast(`Llenado N.º ${r.number} creado.${closed}`);
        await load();
      } catch (err) {
        showErrors(form, err);
      }
    });
  }

  function renderActive() {
    const s = active();
    if (!s) {
      activeEl.innerHTML = html`<div class="card notice"><p>No hay un llenado activo. Las lecturas de los sensores se guardan igualmente,
        sin llenado asignado.</p></div>`;
      return;
    }
    activeEl.innerHTML = html`<section class="card" aria-labelledby="active-h" id="active-card">
      <h2 id="active-h">Llenado activo: N.º ${s.number}</h2>
      <dl class="kv">
        <div><dt>Fecha</dt><dd>${day(s.date)}</dd></div>
        <div><dt>Material</dt><dd>${materialName(s.material_type)}, ${num(s.material_amount_kg, 1)} kg, humedad ${num(s.material_humidity_pct, 1)} %</dd></div>
        <div><dt>Agua añadida</dt><dd>${num(s.added_water_m3, 2)} m³</dd></div>
        <div><dt>Temperatura</dt><dd>${num(s.temperature_c, 1)} °C</dd></div>
        <div><dt>Personas</dt><dd>${s.people}</dd></div>
      </dl>
      <div class="actions">
        <a class="btn btn-quiet" href="#/produccion?llenado=${s.id}">Ver producción</a>
        ${manage ? html`<button type="button" class="btn btn-quiet" data-act="edit">Editar</button>
          <button type="button" class="btn btn-danger" data-act="close">Cerrar llenado</button>` : ''}
      </div>
      <div id="edit-slot"></div>
    </section>`;
  }

  function renderList() {
    if (!stages.length) {
      listEl.innerHTML = html`<p class="muted">Aún no hay llenados.</p>`;
      return;
    }
    listEl.innerHTML = html`<div class="table-wrap"><table id="stages-table">
      <thead><tr><th scope="col">N.º</th><th scope="col">Fecha</th><th scope="col">Material</th><th scope="col" class="n">Cantidad (kg)</th>
      <th scope="col" class="n">Humedad</th><th scope="col" class="n">Agua (m³)</th><th scope="col" class="n">Temp.</th><th scope="col">Personas</th><th scope="col">Estado</th></tr></thead>
      <tbody>${stages.map((s) => html`<tr>
        <th scope="row"><a href="#/produccion?llenado=${s.id}" aria-label="Producción del llenado ${s.number}">${s.number}</a></th>
        <td>${day(s.date)}</td><td>${materialName(s.material_type)}</td><td class="n">${num(s.material_amount_kg, 1)}</td>
        <td class="n">${num(s.material_humidity_pct, 1)} %</td><td class="n">${num(s.added_water_m3, 2)}</td><td class="n">${num(s.temperature_c, 1)} °C</td>
        <td>${s.people}</td>
        <td>${s.active ? html`<span class="tag ok">activo</span>` : html`<span class="tag">cerrado</span> <small>${s.closed_at ? dateTime(s.closed_at) : ''}</small>`}</td>
      </tr>`)}</tbody></table></div>`;
  }

  activeEl.addEventListener('click', async (e) => {
    const btn = e.target.closest('button[data-act]');
    if (!btn) return;
    const s = active();
    if (!s) return;
    if (btn.dataset.act === 'close') {
      const ok = await confirmDialog({
        title: `Cerrar el llenado N.º ${s.number}`,
        body: 'Las lecturas siguientes se guardarán sin llenado hasta que crees otro. Cerrar no genera reporte: para el reporte final usa Reportes (el reporte final también cierra el llenado).',
        confirm: 'Cerrar llenado',
        danger: true,
      });
      if (!ok) return;
      try {
        await busy(btn, 'Cerrando…', () => post(`/api/dashboard/fillings/${s.id}/close/`));
        toast(`Llenado N.º ${s.number} cerrado.`);
        await load();
      } catch (err) {
        toast(err.message, 'error');
      }
    } else if (btn.dataset.act === 'edit') {
      const slot = activeEl.querySelector('#edit-slot');
      slot.innerHTML = html`<h3>Editar llenado N.º ${s.number}</h3>${formHtml('edit', s)}`;
      const form = slot.querySelector('form');
      wireMaterialHint(form);
      form.elements.date.focus();
      form.querySelector('[data-act=cancel-edit]').addEventListener('click', () => {
        slot.innerHTML = '';
        activeEl.querySelector('[data-act=edit]').focus();
      });
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        clearErrors(form);
        const { body, errors } = readForm(form);
        if (Object.keys(errors).length) return showErrors(form, { message: 'Revisa los datos del formulario.', fields: errors });
        const changed = Object.fromEntries(Object.entries(body).filter(([k, v]) => String(v) !== String(s[k])));
        if (!Object.keys(changed).length) {
          slot.innerHTML = '';
          return;
        }
        try {
          await busy(form.querySelector('[type=submit]'), 'Guardando…', () => patch(`/api/dashboard/fillings/${s.id}/`, changed));
          toast(`Llenado N.º ${s.number} actualizado.`);
          await load();
        } catch (err) {
          showErrors(form, err);
        }
      });
    }
  });

  async function load() {
    try {
      stages = (await get('/api/dashboard/fillings/')).fillings || [];
    } catch (e) {
      if (!alive) return;
      listEl.innerHTML = html`<p class="card notice error" role="alert">No se pudo leer la lista de llenados: ${e.message}</p>`;
      stages = [];
    }
    if (!alive) return;
    renderActive();
    renderList();
    if (manage) renderForm();
  }

  async function start() {
    if (manage) {
      try {
        materials = (await get('/api/dashboard/materials/')).materials || {};
      } catch {
        materials = {};
      }
    }
    await load();
  }
  start();

  return () => {
    alive = false;
  };
}
