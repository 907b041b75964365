// Panel: live tiles per channel (any extra numeric channel gets its own tile when it first
// appears), state of the live connection, age of the last reading, the active stage at a
// glance, and the last 24 hours of every channel (10-minute buckets: average with min–max band).

import { get, serverNow } from '../api.js?v=__V__';
import { channelInfo, channelsIn, materialName, orderChannels } from '../channels.js?v=__V__';
import { chart } from '../chart.js?v=__V__';
import { html } from '../dom.js?v=__V__';
import { age, dateTime, isoUtc, measure, num, parseTs, pct, time, vol, zoneNote } from '../fmt.js?v=__V__';
import { liveFeed } from '../live.js?v=__V__';
import { clockBanner } from '../clock.js?v=__V__';
import { channelAlarms, channelBands } from '../alarms.js?v=__V__';

const HISTORY_S = 24 * 3600;
const BUCKET_S = 600;

export function render(main) {
  main.innerHTML = html`
    <h1>Panel</h1>
    <div id="clock"></div>
    <div class="statusbar card" >
      <p id="conn" class="pill" role="status">Conectando…</p>
      <p>Última lectura: <strong id="last-age">—</strong> <span class="muted" id="last-at"></span></p>
      <p id="stage-line" class="muted"></p>
    </div>
    <div id="stage-card"></div>
    <section aria-labelledby="now-h">
      <h2 id="now-h">Ahora</h2>
      <div class="tiles" id="tiles"><p class="muted" id="tiles-empty">Esperando lecturas de los sensores…</p></div>
    </section>
    <section aria-labelledby="hist-h">
      <h2 id="hist-h">Últimas 24 horas</h2>
      <p class="hint" id="hist-note">Promedio cada 10 minutos; la banda sombreada va del mínimo al máximo.</p>
      <div class="charts" id="charts"><p class="muted">Cargando historial…</p></div>
    </section>`;

  const tilesEl = main.querySelector('#tiles');
  const chartsEl = main.querySelector('#charts');
  const connEl = main.querySelector('#conn');
  const lastAgeEl = main.querySelector('#last-age');
  const lastAtEl = main.querySelector('#last-at');
  const stageLine = main.querySelector('#stage-line');
  const stageCard = main.querySelector('#stage-card');
  const tiles = new Map(); // channel -> {el, value, ts}
  let charts = [];
  let lastTs = null; // RFC 3339 text of the newest reading
  let connState = 'connecting';
  let retryAt = 0;
  let lagNote = '';
  let alive = true;
  const timers = [];

  function tile(key) {
    let t = tiles.get(key);
    if (t) return t;
    const info = channelInfo(key, tiles.size);
    const el = document.createElement('div');
    el.className = 'tile';
    el.dataset.ch = key;
    el.innerHTML = html`<h3>${info.label}</h3>
      <p class="val"><span class="v">—</span> <span class="u">${info.unit}</span></p>
      <p class="t muted">${info.extra ? html`<span class="tag">canal adicional</span> ` : ''}<span class="at"></span></p>
      <p class="band muted"></p>`;
    t = { el, key };
    tiles.set(key, t);
    decorate(t);
    main.querySelector('#tiles-empty')?.remove();
    // keep the usual channel order when a new one appears
    const order = orderChannels([...tiles.keys()]);
    const next = order[order.indexOf(key) + 1];
    const before = next && tiles.get(next);
    if (before) tilesEl.insertBefore(el, before.el);
    else tilesEl.append(el);
    return t;
  }

  // The band of each channel from the alarm rules, and the colour of its worst active alarm.
  let bands = {};
  let alarmed = {};
  function decorate(t) {
    t.el.querySelector('.band').textContent = bands[t.key] || '';
    for (const s of ['aviso', 'alarma', 'crítica']) t.el.classList.toggle(`sev-${s}`, alarmed[t.key] === s);
    if (alarmed[t.key]) t.el.dataset.alarm = alarmed[t.key];
    else delete t.el.dataset.alarm;
  }
  async function loadAlarmState() {
    try {
      const [rules, alarms] = await Promise.all([get('/api/dashboard/alarms/reglas/'), get('/api/dashboard/alarms/')]);
      if (!alive) return;
      bands = channelBands(rules);
      alarmed = channelAlarms(alarms.activas);
      for (const t of tiles.values()) decorate(t);
    } catch {
      // the tiles keep their values; the band shows on the next refresh
    }
  }

  function setValue(key, value, ts, flash) {
    const t = tile(key);
    t.ts = ts;
    const text = measure(value);
    const v = t.el.querySelector('.v');
    v.textContent = text;
    v.classList.toggle('long', text.length > 7);
    t.el.querySelector('.at').textContent = time(ts);
    t.el.querySelector('.at').title = dateTime(ts);
    if (flash) {
      t.el.classList.remove('flash');
      void t.el.offsetWidth; // restart the animation
      t.el.classList.add('flash');
    }
  }

  function noteReading(ts) {
    const p = parseTs(ts);
    const cur = lastTs && parseTs(lastTs);
    if (p && (!cur || p.ms >= cur.ms)) lastTs = ts;
    tick();
  }

  function tick() {
    if (lastTs) {
      const p = parseTs(lastTs);
      lastAgeEl.textContent = age((serverNow() - p.ms) / 1000);
      lastAtEl.textContent = `(${dateTime(lastTs)}, ${zoneNote()})`;
    } else {
      lastAgeEl.textContent = 'ninguna todavía';
    }
    let text;
    if (connState === 'open') text = 'En vivo: conectado';
    else if (connState === 'connecting') text = 'Conectando…';
    else text = `Sin conexión en vivo · reintento en ${Math.max(0, Math.ceil((retryAt - Date.now()) / 1000))} s`;
    connEl.textContent = lagNote ? `${text} · ${lagNote}` : text;
    connEl.dataset.state = connState;
  }

  const feed = liveFeed({
    onMessage(msg) {
      if (msg.type === 'lagged') {
        lagNote = `se omitieron ${num(msg.skipped, 0)} lecturas por conexión lenta`;
        setTimeout(() => {
          lagNote = '';
        }, 10_000);
        return;
      }
      if (msg.type === 'alarm') {
        loadAlarmState();
        return;
      }
      if (msg.type !== 'sensor_data') return;
      for (const key of channelsIn(msg)) setValue(key, msg[key], msg.ts, true);
      noteReading(msg.ts);
    },
    onState(state, info) {
      connState = state;
      retryAt = info.retryAt || 0;
      tick();
    },
  });
  timers.push(setInterval(tick, 1000));

  async function loadStats() {
    try {
      const s = await get('/api/dashboard/stats/');
      if (!alive) return;
      clockBanner(main.querySelector('#clock'), s.reloj, () => loadStats());
      if (s.ultima_lectura) noteReading(s.ultima_lectura);
      if (s.etapas_activas > 0) {
        stageLine.textContent = '';
        loadStage();
      } else {
        stageCard.innerHTML = '';
        stageLine.textContent = 'Sin llenado activo: las lecturas se guardan igualmente.';
      }
      return s;
    } catch (e) {
      if (alive) stageLine.textContent = e.message;
      return null;
    }
  }

  async function loadStage() {
    try {
      const p = await get('/api/dashboard/production/current/');
      if (!alive) return;
      const s = p.summary || {};
      stageCard.innerHTML = html`<a class="card stage-card" href="#/produccion">
        <span><strong>Llenado N.º ${p.stage.number}</strong> · ${materialName(p.stage.material_type)} · día ${num(s.days_elapsed, 0)}</span>
        <span>Real <strong>${vol(s.actual_total_m3)} Nm³</strong> · esperado a la fecha ${vol(s.expected_to_date_m3)} Nm³
        · diferencia <strong>${pct(s.difference_pct)}</strong></span></a>`;
    } catch (e) {
      if (!alive) return;
      stageCard.innerHTML = '';
      stageLine.textContent = e.status === 404 ? 'Sin llenado activo: las lecturas se guardan igualmente.' : e.message;
    }
  }

  async function loadLatest(ultima) {
    const p = parseTs(ultima);
    if (!p) return;
    try {
      const r = await get(`/api/dashboard/readings/?from=${encodeURIComponent(isoUtc(p.ms - 120_000))}&to=${encodeURIComponent(isoUtc(p.ms + 1))}&limit=2000`);
      if (!alive) return;
      for (const reading of r.readings || []) {
        for (const key of channelsIn(reading)) {
          const t = tiles.get(key);
          const prev = t && t.ts && parseTs(t.ts);
          const cur = parseTs(reading.ts);
          if (!prev || (cur && cur.ms >= prev.ms)) setValue(key, reading[key], reading.ts, false);
        }
      }
    } catch {
      // the live feed fills the tiles anyway
    }
  }

  async function loadHistory() {
    const now = serverNow();
    // On a bucket boundary, so the server answers from its 10-minute rollups.
    const from = Math.floor((now - HISTORY_S * 1000) / (BUCKET_S * 1000)) * BUCKET_S * 1000;
    const to = now + 60_000; // readings stamped by a sensor clock slightly ahead still count
    let r;
    try {
      r = await get(`/api/dashboard/readings/?from=${encodeURIComponent(isoUtc(from))}&to=${encodeURIComponent(isoUtc(to))}&bucket=${BUCKET_S}`);
    } catch (e) {
      if (alive) chartsEl.innerHTML = html`<p class="notice error card" role="alert">${e.message}</p>`;
      return;
    }
    if (!alive) return;
    const buckets = r.buckets || [];
    const names = orderChannels(buckets.flatMap((b) => channelsIn(b)));
    for (const c of charts) c.destroy();
    charts = [];
    if (buckets.length) parseTs(buckets[buckets.length - 1].ts);
    main.querySelector('#hist-note').textContent =
      `Promedio cada ${num(r.bucket_s / 60, 0)} minutos; la banda sombreada va del mínimo al máximo. Horas: ${zoneNote()}.`;
    if (!names.length) {
      chartsEl.innerHTML = html`<p class="muted">Sin lecturas en las últimas 24 horas.</p>`;
      return;
    }
    chartsEl.innerHTML = '';
    const step = r.bucket_s || BUCKET_S;
    names.forEach((key, i) => {
      const info = channelInfo(key, i);
      const xs = [];
      const avg = [];
      const min = [];
      const max = [];
      let prev = null;
      for (const b of buckets) {
        const p = parseTs(b.ts);
        if (!p) continue;
        const x = p.ms / 1000 + step / 2;
        if (prev !== null && x - prev > step * 1.5) {
          xs.push(prev + step);
          avg.push(null);
          min.push(null);
          max.push(null);
        }
        const v = b[key];
        xs.push(x);
        avg.push(v ? v.avg : null);
        min.push(v ? v.min : null);
        max.push(v ? v.max : null);
        prev = x;
      }
      const fig = document.createElement('figure');
      fig.className = 'card chart-card';
      fig.dataset.ch = key;
      fig.innerHTML = html`<figcaption>${info.label}${info.unit ? html` <span class="muted">(${info.unit})</span>` : ''}</figcaption><div class="plot"></div>`;
      chartsEl.append(fig);
      const band = `${info.color}33`;
      charts.push(
        chart(fig.querySelector('.plot'), {
          height: 170,
          series: [
            { label: 'Promedio', color: info.color },
            { label: 'Mín', color: 'transparent', width: 0, points: { show: false } },
            { label: 'Máx', color: 'transparent', width: 0, points: { show: false } },
          ],
          bands: [{ series: [3, 2], fill: band }],
          xRange: [from / 1000, to / 1000],
        }, [xs, avg, min, max]),
      );
    });
  }

  loadStats().then((s) => {
    if (s && s.ultima_lectura) loadLatest(s.ultima_lectura);
  });
  loadHistory();
  loadAlarmState();
  timers.push(setInterval(loadStats, 30_000));
  timers.push(setInterval(loadAlarmState, 60_000));
  timers.push(setInterval(() => {
    if (document.visibilityState === 'visible') loadHistory();
  }, 120_000));

  return () => {
    alive = false;
    feed.stop();
    timers.forEach(clearInterval);
    for (const c of charts) c.destroy();
  };
}
