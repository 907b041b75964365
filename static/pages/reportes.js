// Reportes: generate a normal or final report (final closes the stage, so it asks first), the
// history with PDF/Excel/CSV downloads (fetched with the session's token) and regeneration.

import { can, download, get, post } from '../api.js?v=__V__';
import { busy, clearErrors, confirmDialog, html, showErrors, toast } from '../dom.js?v=__V__';
import { dateTimeShort, day, vol } from '../fmt.js?v=__V__';

const FORMATS = [
  { key: 'pdf', label: 'PDF', ext: 'pdf' },
  { key: 'excel', label: 'Excel', ext: 'xlsx' },
  { key: 'csv', label: 'CSV', ext: 'csv' },
];

function downloadButtons(id) {
  return html`<span class="dl" role="group" aria-label="Descargar reporte ${id}">${FORMATS.map(
    (f) => html`<button type="button" class="btn btn-small" data-dl="${f.key}" data-id="${id}" aria-label="Descargar ${f.label} del reporte ${id}">${f.label}</button>`,
  )}</span>`;
}

export function render(main) {
  const generate = can('GenerarReportes');
  const view = can('VerReportes');
  main.innerHTML = html`<h1>Reportes</h1>
    ${generate ? html`<section aria-labelledby="new-h"><h2 id="new-h">Generar un reporte</h2><div id="create-slot"><p class="muted">Cargando…</p></div></section>` : ''}
    ${view ? html`<section aria-labelledby="hist-h"><h2 id="hist-h">Historial</h2><div id="history"><p class="muted">Cargando…</p></div></section>` : ''}`;
  let stages = [];
  let alive = true;

  function createForm() {
    const activeStage = stages.find((s) => s.active);
    return html`<form class="card form" id="report-form" novalidate>
      <p class="form-error" role="alert" tabindex="-1" hidden></p>
      <fieldset class="field">
        <legend>Tipo de reporte</legend>
        <label class="choice"><input type="radio" name="report_type" value="normal" checked> <span><strong>Normal</strong>: estado actual; el llenado sigue activo.</span></label>
        <label class="choice"><input type="radio" name="report_type" value="final"> <span><strong>Final</strong>: reporte de cierre; <strong>cierra el llenado</strong>.</span></label>
      </fieldset>
      ${stages.length ? html`<div class="field">
        <label for="r-stage_id">Llenado</label>
        <select id="r-stage_id" name="stage_id">
          ${stages.map((s) => html`<option value="${s.id}" ${activeStage ? (s.id === activeStage.id ? 'selected' : '') : ''}>N.º ${s.number} · ${day(s.date)}${s.active ? ' (activo)' : ''}</option>`)}
        </select></div>` : html`<p class="hint">Se usará el llenado activo.</p>`}
      <div class="field"><label for="r-observations">Observaciones <span class="muted">(opcional)</span></label>
        <textarea id="r-observations" name="observations" rows="3" aria-describedby="r-observations-hint"></textarea>
        <p class="hint" id="r-observations-hint">Lo que se vio en campo: fugas, cambios de carga, clima…</p></div>
      <div class="field"><label for="r-inferences">Inferencias <span class="muted">(opcional)</span></label>
        <textarea id="r-inferences" name="inferences" rows="3" aria-describedby="r-inferences-hint"></textarea>
        <p class="hint" id="r-inferences-hint">Conclusiones e interpretación de los resultados.</p></div>
      <div class="actions"><button type="submit" class="btn btn-primary">Generar reporte</button></div>
      <div id="created" aria-live="polite"></div>
    </form>`;
  }

  async function renderCreate() {
    const slot = main.querySelector('#create-slot');
    try {
      stages = (await get('/api/dashboard/fillings/')).fillings || [];
    } catch {
      stages = [];
    }
    if (!alive) return;
    slot.innerHTML = createForm();
    const form = slot.querySelector('form');
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const type = form.elements.report_type.value;
      const body = { report_type: type };
      const obs = form.elements.observations.value.trim();
      const inf = form.elements.inferences.value.trim();
      if (obs) body.observations = obs;
      if (inf) body.inferences = inf;
      if (form.elements.stage_id && form.elements.stage_id.value) body.stage_id = Number(form.elements.stage_id.value);
      if (type === 'final') {
        const st = stages.find((s) => s.id === body.stage_id) || stages.find((s) => s.active);
        const ok = await confirmDialog({
          title: 'Generar reporte final',
          body: `El reporte final cierra el llenado${st ? ` N.º ${st.number}` : ''}: dejará de estar activo y las lecturas nuevas no contarán para él. ¿Continuar?`,
          confirm: 'Generar y cerrar el llenado',
          danger: true,
        });
        if (!ok) return;
      }
      try {
        const r = await busy(form.querySelector('[type=submit]'), 'Generando…', () => post('/api/dashboard/report/create/', body));
        form.querySelector('#created').innerHTML = html`<div class="notice ok" role="status">
          <p>${r.detail || 'Reporte generado.'} ${r.stage_active === false ? 'El llenado quedó cerrado.' : ''}</p>
          <p>Reporte ${r.id}: ${downloadButtons(r.id)}</p></div>`;
        form.elements.observations.value = '';
        form.elements.inferences.value = '';
        toast('Reporte generado.');
        if (view) loadHistory();
        if (type === 'final') {
          stages = (await get('/api/dashboard/fillings/').catch(() => ({ fillings: stages }))).fillings || stages;
        }
      } catch (err) {
        showErrors(form, err);
      }
    });
  }

  async function loadHistory() {
    const el = main.querySelector('#history');
    let list;
    try {
      list = (await get('/api/dashboard/report/history/')).history || [];
    } catch (e) {
      if (alive) el.innerHTML = html`<p class="card notice error" role="alert">${e.message}</p>`;
      return;
    }
    if (!alive) return;
    if (!list.length) {
      el.innerHTML = html`<p class="muted">Todavía no se ha generado ningún reporte.</p>`;
      return;
    }
    el.innerHTML = html`<div class="table-wrap"><table id="history-table">
      <thead><tr><th scope="col">Fecha</th><th scope="col">Tipo</th><th scope="col">Llenado</th><th scope="col">Generado por</th>
        <th scope="col" class="n">Estimada (Nm³)</th><th scope="col" class="n">Real (Nm³)</th><th scope="col">Notas</th><th scope="col">Descargar</th></tr></thead>
      <tbody>${list.map((r) => html`<tr data-report="${r.id}">
        <td class="when">${dateTimeShort(r.created_at)}${r.regenerated_at ? html`<br><small class="muted">regenerado ${dateTimeShort(r.regenerated_at)}</small>` : ''}</td>
        <td>${r.report_type === 'final' ? html`<span class="tag warn">final</span>` : html`<span class="tag">normal</span>`}</td>
        <td>${r.stage_number != null ? `N.º ${r.stage_number}` : '—'}</td>
        <td>${r.user_name || '—'}</td>
        <td class="n">${vol(r.production_estimated)}</td><td class="n">${vol(r.production_real)}</td>
        <td class="notes">${r.observations ? html`<span title="${r.observations}">${r.observations}</span>` : ''}${r.inferences ? html`<em title="${r.inferences}">${r.inferences}</em>` : ''}</td>
        <td><div class="row-actions">${downloadButtons(r.id)}
          ${generate ? html`<button type="button" class="btn btn-small btn-quiet" data-regen="${r.id}">Regenerar</button>` : ''}</div></td>
      </tr>`)}</tbody></table></div>`;
  }

  main.addEventListener('click', async (e) => {
    const dl = e.target.closest('button[data-dl]');
    if (dl) {
      const f = FORMATS.find((x) => x.key === dl.dataset.dl);
      const id = dl.dataset.id;
      try {
        const name = await busy(dl, '…', () => download(`/api/dashboard/report/download/${encodeURIComponent(id)}/${f.key}/`, `reporte-${id}.${f.ext}`));
        toast(`Descargado ${name}.`);
      } catch (err) {
        toast(err.message, 'error');
      }
      return;
    }
    const rg = e.target.closest('button[data-regen]');
    if (rg) {
      try {
        const r = await busy(rg, 'Regenerando…', () => post(`/api/dashboard/report/regenerate/${encodeURIComponent(rg.dataset.regen)}/`));
        toast((r && r.detail) || `Reporte ${rg.dataset.regen} regenerado.`);
        loadHistory();
      } catch (err) {
        toast(err.message, 'error');
      }
    }
  });

  if (generate) renderCreate();
  if (view) loadHistory();
  return () => {
    alive = false;
  };
}
