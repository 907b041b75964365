// Alarms in the browser: the banner on every page while an alarm is active (count and worst
// severity), the Panel tile with its band in the alarm colour, and the Alarmas page
// (acknowledge with a comment, history, thresholds), in Debian's Chromium against the release
// binary with readings published over MQTT.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { api, launchBrowser, publishJson, startAppliance, watch } from './appliance.mjs';

const ADMIN = { username: 'admin', password: 'Digestor-Prueba-2026', email: 'a@b.co' };

let app;
let browser;
let page;
let seen;
let token;

before(async () => {
  app = await startAppliance({ admin: ADMIN });
  token = (await api(app, 'POST', '/api/iniciar-sesion/', { body: ADMIN })).json.access;
  browser = await launchBrowser();
  page = browser.context.pages()[0] || (await browser.context.newPage());
  seen = watch(page, app.url);
});

after(async () => {
  await browser?.close().catch(() => {});
  if (app) await app.stop();
});

async function alarms() {
  return (await api(app, 'GET', '/api/dashboard/alarms/', { token })).json;
}

async function until(what, check) {
  const deadline = Date.now() + 20_000;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, what);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('alarmas: aviso en todas las páginas, color en el Panel, reconocer con comentario e historial', { timeout: 120_000 }, async () => {
  const put = await api(app, 'PUT', '/api/dashboard/alarms/reglas/', {
    token,
    // The trace below also swings 11 °C; this test is about one alarm.
    body: { reglas: { temperatura_alta: { duracion_s: 0 }, oscilacion_temperatura: { habilitada: false } } },
  });
  assert.equal(put.status, 200, JSON.stringify(put.json));

  await page.goto(`${app.url}/`);
  await page.getByLabel('Usuario', { exact: true }).fill(ADMIN.username);
  await page.getByLabel('Contraseña', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Entrar' }).click();
  await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
  assert.equal(await page.locator('#alarm-banner').isHidden(), true, 'sin alarmas no hay aviso');
  // The tile is made by the live feed: publish only once it is connected.
  await page.locator('#conn').filter({ hasText: 'conectado' }).waitFor();

  await publishJson(app, 'Prueba', { temperatura: 46.5 });
  await until('la alarma no se activó', async () => (await alarms()).activas.length === 1);

  // The Panel tile shows the band and turns to the alarm colour (the feed announces it).
  const tile = page.locator('.tile[data-ch="temperatura"]');
  await tile.waitFor();
  await page.waitForFunction(() => document.querySelector('.tile[data-ch="temperatura"]')?.dataset.alarm === 'alarma');
  assert.match(await tile.locator('.band').textContent(), /Banda 15–40 °C/);
  assert.ok(await tile.evaluate((el) => el.classList.contains('sev-alarma')));

  // The banner is on every page.
  for (const where of ['produccion', 'estado']) {
    await page.goto(`${app.url}/#/${where}`);
    await page.locator('#alarm-banner:not([hidden])').waitFor();
    assert.equal(await page.locator('#alarm-count').textContent(), '1 alarma activa');
    assert.equal(await page.locator('#alarm-worst').textContent(), 'alarma');
  }

  await page.getByRole('link', { name: 'Ver alarmas' }).click();
  await page.getByRole('heading', { level: 1, name: 'Alarmas' }).waitFor();
  const item = page.locator('#active-list > li');
  await item.waitFor();
  assert.match(await item.textContent(), /Temperatura del digestor sobre la banda/);
  await item.getByLabel('Comentario').fill('Se abrió la ventilación');
  await item.getByRole('button', { name: 'Reconocer' }).click();
  await page.locator('#active-list > li .estado', { hasText: 'reconocida' }).waitFor();
  assert.match(await page.locator('#active-list > li').textContent(), /Reconocida por admin .*Se abrió la ventilación/);
  const a = (await alarms()).activas[0];
  assert.equal(a.estado, 'reconocida');
  assert.equal(a.reconocida.comentario, 'Se abrió la ventilación');

  // The thresholds are shown and saved from the page.
  const umbral = page.getByLabel('Metano bajo: umbral');
  assert.equal(await umbral.inputValue(), '45');
  await umbral.fill('42');
  await page.getByRole('button', { name: 'Guardar umbrales' }).click();
  await until('el umbral no se guardó', async () => {
    const r = (await api(app, 'GET', '/api/dashboard/alarms/reglas/', { token })).json;
    return r.reglas.find((x) => x.regla === 'metano_bajo').umbral === 42;
  });

  // Back in the band: cleared, into the history, and the banner goes away.
  await publishJson(app, 'Prueba', { temperatura: 35 });
  await page.locator('#history-list > li .estado', { hasText: 'despejada' }).waitFor();
  await page.locator('#no-alarms').waitFor();
  await page.goto(`${app.url}/#/estado`);
  await page.getByRole('heading', { level: 1, name: 'Estado del equipo' }).waitFor();
  assert.equal(await page.locator('#alarm-banner').isHidden(), true);
  assert.deepEqual(seen.take(), [], 'errores inesperados en la página');
});
