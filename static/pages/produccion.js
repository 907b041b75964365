// Producción: expected (kinetic model) against actual (sensors) biogas of a stage, cumulative and
// per day, with totals, difference, yields, and the days without sensor data shown apart from
// days where the sensors measured zero.

import { get } from '../api.js?v=__V__';
import { materialName } from '../channels.js?v=__V__';
import { chart, missingDaysHook } from '../chart.js?v=__V__';
import { html } from '../dom.js?v=__V__';
import { day, dayShort, num, pct, sig, vol } from '../fmt.js?v=__V__';

const EXPECTED = '#1f5fa8';
const ACTUAL = '#1d6b34';

const PARAMS = {
  material_type: ['Material', ''],
  ts_kg: ['Sólidos totales (ST)', 'kg'],
  vs_kg: ['Sólidos volátiles (SV)', 'kg'],
  methane_potential_m3: ['Potencial de metano', 'Nm³ CH₄'],
  rm_m3_per_day: ['Producción máxima diaria (Rm)', 'Nm³/día'],
  k_per_day: ['Constante de velocidad efectiva (k)', '1/día'],
  lag_days: ['Latencia efectiva', 'días'],
  temperature_factor: ['Factor de temperatura', ''],
  reached_95pct: ['La curva alcanza el 95 % del total', ''],
  vs_ts: ['Relación SV/ST', ''],
  b0_m3_ch4_per_kg_vs: ['B0', 'Nm³ CH₄/kg SV'],
  methane_fraction: ['Fracción de metano del biogás', ''],
  source: ['Fuentes', ''],
};

function paramValue(v) {
  if (typeof v === 'boolean') return v ? 'sí' : 'no';
  if (typeof v === 'number') return sig(v, 4);
  return String(v ?? '—');
}

function paramList(obj) {
  return html`<dl class="kv">${Object.entries(obj).filter(([, v]) => v === null || typeof v !== 'object').map(([k, v]) => {
    const [label, unit] = PARAMS[k] || [k, ''];
    return html`<div class="${k === 'source' ? 'wide' : ''}"><dt>${label}</dt><dd>${k === 'material_type' ? materialName(v) : paramValue(v)}${unit ? ` ${unit}` : ''}</dd></div>`;
  })}</dl>`;
}

function paramsBlock(params) {
  const nested = Object.entries(params).filter(([, v]) => v && typeof v === 'object');
  return html`<details class="card" id="model-params"><summary>Parámetros del modelo</summary>
    ${paramList(params)}
    ${nested.map(([k, v]) => html`<h3>${k === 'material' ? 'Parámetros del material (configuración)' : k}</h3>${paramList(v)}`)}</details>`;
}

function stageLabel(s) {
  return `N.º ${s.number} · ${day(s.date)}${s.active ? ' (activo)' : ''}`;
}

export function render(main, { params }) {
  main.innerHTML = html`<h1>Producción</h1>
    <div class="toolbar">
      <div class="field inline"><label for="stage-sel">Llenado</label><select id="stage-sel" disabled><option>Cargando…</option></select></div>
    </div>
    <div id="prod" aria-live="polite"></div>`;
  const sel = main.querySelector('#stage-sel');
  const out = main.querySelector('#prod');
  let charts = [];
  let alive = true;
  let seq = 0;

  function clearCharts() {
    for (const c of charts) c.destroy();
    charts = [];
  }

  async function show(id) {
    const my = ++seq;
    clearCharts();
    out.innerHTML = html`<p class="muted">Cargando producción…</p>`;
    let p;
    try {
      p = await get(`/api/dashboard/production/${encodeURIComponent(id)}/`);
    } catch (e) {
      if (alive && my === seq) out.innerHTML = html`<p class="card notice error" role="alert">${e.message}</p>`;
      return;
    }
    if (!alive || my !== seq) return;
    renderProduction(p);
  }

  function renderProduction(p) {
    const st = p.stage || {};
    const s = p.summary || {};
    const ex = p.expected || { days: [], dates: [], daily_biogas_m3: [], cumulative_biogas_m3: [] };
    const ac = p.actual || { days: [], dates: [], daily_biogas_m3: [], cumulative_biogas_m3: [], missing: [] };
    const n = Math.max(ex.days.length, ac.days.length);
    const xs = Array.from({ length: n }, (_, i) => i + 1);
    const at = (arr, i) => (arr && i < arr.length && arr[i] !== undefined ? arr[i] : null);
    const missing = (i) => !!(ac.missing && ac.missing[i]);
    const dateOf = (i) => at(ac.dates, i) || at(ex.dates, i);
    const exCum = xs.map((_, i) => at(ex.cumulative_biogas_m3, i));
    // days without sensor data have no measured value: gaps, not zeros
    const acCum = xs.map((_, i) => (missing(i) ? null : at(ac.cumulative_biogas_m3, i)));
    const exDay = xs.map((_, i) => at(ex.daily_biogas_m3, i));
    const acDay = xs.map((_, i) => (missing(i) ? null : at(ac.daily_biogas_m3, i)));
    const diff = Number(s.difference_pct);
    const diffText = Number.isFinite(diff)
      ? diff >= 0 ? 'por encima de lo esperado' : 'por debajo de lo esperado'
      : 'sin datos suficientes';
    const missingCount = s.days_missing ?? (ac.missing || []).filter(Boolean).length;
    const partial = (i) => !!(ac.parcial && ac.parcial[i]);
    const partialCount = s.dias_parciales ?? 0;
    // meter samples set aside that day, by reason (see the README's Sensors section)
    const REASONS = { duplicate: 'repetidas', out_of_order: 'fuera de orden', jitter: 'oscilación', glitch: 'falla', meter_change: 'cambio de medidor' };
    const discards = (i) => at(ac.descartes, i) || {};
    const discardTotal = (i) => Object.keys(REASONS).reduce((sum, k) => sum + (Number(discards(i)[k]) || 0), 0);
    const discardTitle = (i) => Object.entries(REASONS)
      .filter(([k]) => Number(discards(i)[k]) > 0)
      .map(([k, name]) => `${discards(i)[k]} ${name}`)
      .join(', ');
    const realCell = (i) => {
      if (missing(i)) return html`<span class="tag warn">sin datos</span>`;
      if (!partial(i)) return vol(acDay[i]);
      const minutes = Number(at(ac.minutos_sin_datos, i)) || 0;
      const why = minutes > 0 ? `${num(minutes, 0)} min sin datos` : 'cambio de medidor';
      return html`${vol(acDay[i])} <span class="tag warn" title="${why}">parcial</span>`;
    };

    out.innerHTML = html`
      <p class="lead">Llenado <strong>N.º ${st.number}</strong> del ${day(st.date)} · ${materialName(st.material_type)},
        ${num(st.material_amount_kg, 1)} kg · ${st.active ? html`<span class="tag ok">activo</span>` : html`<span class="tag">cerrado</span>`}</p>
      <dl class="stats" id="prod-summary">
        <div><dt>Producción real</dt><dd><strong>${vol(s.actual_total_m3)}</strong> Nm³
          ${s.actual_total_m3_medido != null ? html`<br><small>${vol(s.actual_total_m3_medido)} m³ medidos por el contador</small>` : ''}</dd></div>
        <div><dt>Esperada a la fecha</dt><dd>${vol(s.expected_to_date_m3)} Nm³</dd></div>
        <div class="${Number.isFinite(diff) ? (diff >= 0 ? 'good' : 'bad') : ''}"><dt>Diferencia</dt><dd><strong>${pct(diff)}</strong> <small>${diffText}</small></dd></div>
        <div><dt>Esperada en todo el llenado</dt><dd>${vol(s.expected_total_m3 ?? ex.A_biogas_m3)} Nm³</dd></div>
        <div><dt>Rendimiento</dt><dd>${sig(s.yield_m3_per_kg_fresh)} Nm³ biogás/kg fresco<br>${sig(s.yield_m3_per_kg_vs)} Nm³ biogás/kg SV
          ${s.rendimiento_metano_nm3_por_kg_sv != null ? html`<br>${sig(s.rendimiento_metano_nm3_por_kg_sv)} Nm³ CH₄/kg SV (comparable con B0)` : ''}</dd></div>
        <div><dt>Días transcurridos</dt><dd>${num(s.days_elapsed, 0)}</dd></div>
        <div class="${missingCount > 0 ? 'warnbox' : ''}"><dt>Días sin datos</dt><dd>${num(missingCount, 0)}</dd></div>
        <div class="${partialCount > 0 ? 'warnbox' : ''}"><dt>Días parciales</dt><dd>${num(partialCount, 0)}</dd></div>
      </dl>
      ${st.active ? html`<p class="hint">El día de hoy aún no termina: su producción real sigue sumando, así que la diferencia con lo esperado
        a la fecha (que cuenta el día completo) se reduce a lo largo del día.</p>` : ''}
      <p class="hint">Nm³: metros cúbicos normales de gas seco (0 °C, 1013,25 hPa), la unidad del modelo. El contador mide m³ reales
        a la presión y temperatura del biodigestor; en altura 1 Nm³ se lee como más de 1 m³.</p>
      <figure class="card chart-card" id="cum-chart"><figcaption>Producción acumulada de biogás (Nm³): esperada y real</figcaption><div class="plot"></div></figure>
      <figure class="card chart-card" id="daily-chart"><figcaption>Producción diaria de biogás (Nm³)</figcaption><div class="plot"></div>
        <p class="hint"><span class="swatch missing" aria-hidden="true"></span> Franja gris: día <strong>sin datos</strong> de los sensores
        (no es lo mismo que un día con 0 m³ medidos, que aparece como barra vacía en 0).</p></figure>
      <details class="card">
        <summary>Tabla por día</summary>
        <div class="table-wrap"><table>
          <caption class="sr-only">Producción por día</caption>
          <thead><tr><th scope="col">Día</th><th scope="col">Fecha</th><th scope="col" class="n">Esperada (Nm³)</th><th scope="col" class="n">Real (Nm³)</th>
            <th scope="col" class="n">Medido (m³)</th>
            <th scope="col" class="n">Acum. esperada (Nm³)</th><th scope="col" class="n">Acum. real (Nm³)</th><th scope="col" class="n">Lecturas</th>
            <th scope="col" class="n">Descartadas</th></tr></thead>
          <tbody>${xs.map((d, i) => (i < ac.days.length ? html`<tr class="${missing(i) ? 'missing' : ''}">
            <th scope="row">${d}</th><td>${dayShort(dateOf(i))}</td><td class="n">${vol(exDay[i])}</td>
            <td class="n">${realCell(i)}</td>
            <td class="n">${missing(i) || !ac.daily_biogas_m3_medido ? '—' : vol(at(ac.daily_biogas_m3_medido, i))}</td>
            <td class="n">${vol(exCum[i])}</td><td class="n">${missing(i) ? '—' : vol(acCum[i])}</td><td class="n">${ac.readings ? num(at(ac.readings, i), 0) : '—'}</td>
            <td class="n" title="${discardTitle(i)}">${ac.descartes ? num(discardTotal(i), 0) : '—'}</td></tr>` : ''))}</tbody>
        </table></div>
        <p class="hint"><strong>Parcial</strong>: parte del día no tiene datos de gas (caudal con cortes, o un cambio de medidor
          cuyo salto no se cuenta); la cifra es un mínimo. <strong>Descartadas</strong>: lecturas del medidor que no se contaron
          (repetidas, fuera de orden, oscilación, fallas); pase el puntero para ver el motivo.</p>
        ${ex.days.length > ac.days.length ? html`<p class="hint">La curva esperada continúa ${ex.days.length - ac.days.length} días más (hasta el día ${ex.days.length}).</p>` : ''}
      </details>
      ${ex.params ? paramsBlock(ex.params) : ''}`;

    if (!n) {
      out.querySelector('#cum-chart .plot').innerHTML = html`<p class="muted">Sin datos todavía.</p>`;
      return;
    }
    const x = {
      name: 'Día',
      axisLabel: 'Día del llenado',
      tick: (v) => (Number.isInteger(v) ? String(v) : ''),
      label: (v) => {
        const d = dateOf(v - 1);
        return d ? `día ${v} · ${dayShort(d)}` : `día ${v}`;
      },
    };
    charts.push(
      chart(out.querySelector('#cum-chart .plot'), {
        x,
        height: 260,
        yLabel: 'Nm³',
        series: [
          { label: 'Esperada', color: EXPECTED, dash: [6, 4] },
          { label: 'Real', color: ACTUAL, width: 2.5, points: { show: n <= 40, size: 5 } },
        ],
        hooks: missingDaysHook(missing),
      }, [xs, exCum, acCum]),
    );
    charts.push(
      chart(out.querySelector('#daily-chart .plot'), {
        x,
        height: 220,
        yLabel: 'Nm³/día',
        series: [
          { label: 'Real', color: ACTUAL, fill: `${ACTUAL}99`, bars: true, width: 1 },
          { label: 'Esperada', color: EXPECTED, dash: [6, 4] },
        ],
        hooks: missingDaysHook(missing),
      }, [xs, acDay, exDay]),
    );
  }

  async function start() {
    let list;
    try {
      list = (await get('/api/dashboard/fillings/')).fillings || [];
    } catch (e) {
      if (!alive) return;
      sel.innerHTML = html`<option>—</option>`;
      out.innerHTML = html`<p class="card notice error" role="alert">No se pudo leer la lista de llenados: ${e.message}</p>`;
      return;
    }
    if (!alive) return;
    if (!list.length) {
      sel.innerHTML = html`<option>—</option>`;
      out.innerHTML = html`<div class="card notice"><p>Aún no hay llenados registrados. Crea uno en <a href="#/llenados">Llenados</a>
        para comparar la producción esperada con la real.</p></div>`;
      return;
    }
    const wanted = params.get('llenado');
    const chosen = list.find((s) => String(s.id) === wanted) || list.find((s) => s.active) || list[0];
    sel.innerHTML = html`${list.map((s) => html`<option value="${s.id}" ${s.id === chosen.id ? 'selected' : ''}>${stageLabel(s)}</option>`)}`;
    sel.disabled = false;
    sel.addEventListener('change', () => {
      history.replaceState(null, '', `#/produccion?llenado=${encodeURIComponent(sel.value)}`);
      show(sel.value);
    });
    show(chosen.id);
  }
  start();

  return () => {
    alive = false;
    clearCharts();
  };
}
