// Field time: an appliance whose clock reads 2020 (rehearsed with clock.start_offset_s, no NTP:
// clock.sync_check = "file" with no flag file) shows a banner on Panel and on Estado; the
// administrator's button sets the time from this browser's clock, the banner goes, Estado says
// the clock was set by an administrator and the readings taken meanwhile are on today's date.

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { LAPTOP, PHONE, api, launchBrowser, mqttConnect, screenshot, startAppliance, watch } from './appliance.mjs';

const ADMIN = { username: 'admin', password: 'Digestor-Prueba-2026', email: 'a@b.co' };
// 2020-06-01T12:00:00-05:00
const STUCK_S = 1_591_030_800;

let app;
let browser;
let page;
let seen;
let flagDir;

before(async () => {
  flagDir = await fs.mkdtemp(path.join(os.tmpdir(), 'biogestor-ntp-'));
  app = await startAppliance({
    admin: ADMIN,
    env: {
      BIOGESTOR_CLOCK__SYNC_CHECK: 'file',
      BIOGESTOR_CLOCK__SYNC_FILE: path.join(flagDir, 'synchronized'),
      BIOGESTOR_CLOCK__SET_CLOCK: 'appliance',
      BIOGESTOR_CLOCK__START_OFFSET_S: String(STUCK_S - Math.floor(Date.now() / 1000)),
    },
  });
  browser = await launchBrowser();
  page = browser.context.pages()[0];
  seen = watch(page, app.url);
});

after(async () => {
  await browser?.close();
  if (app) {
    if (process.exitCode && process.env.BIOGESTOR_UI_LOG) console.error(app.log());
    await app.stop();
  }
  if (flagDir) await fs.rm(flagDir, { recursive: true, force: true });
});

test('an unsynchronised clock is shown on Panel and Estado and the administrator sets it from the browser', async () => {
  // One reading while the clock reads 2020.
  const sensor = await mqttConnect(app, 'reloj-sensor', { username: 'sensor', password: 'cambiar-esta-clave' });
  sensor.publish('Prueba', { temperatura: 35.5, timestamp: 4_070_908_800 });
  await sensor.close();
  const { json: login } = await api(app, 'POST', '/api/iniciar-sesion/', { body: { username: ADMIN.username, password: ADMIN.password } });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { json } = await api(app, 'GET', '/api/dashboard/stats/', { token: login.access });
    if (json.lecturas_total === 1) {
      assert.ok(json.ultima_lectura.startsWith('2020-06-01'), json.ultima_lectura);
      break;
    }
    assert.ok(Date.now() < deadline, 'la lectura no llegó');
    await new Promise((r) => setTimeout(r, 100));
  }

  await page.goto(`${app.url}/#/acceso`);
  await page.getByLabel('Usuario', { exact: true }).fill(ADMIN.username);
  await page.getByLabel('Contraseña', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Entrar' }).click();
  await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();

  const banner = page.locator('#clock-banner');
  await banner.waitFor();
  assert.match(await banner.textContent(), /no está sincronizado/);
  assert.match(await banner.textContent(), /2020/);
  await screenshot(page, 'reloj-panel-laptop', LAPTOP);
  await screenshot(page, 'reloj-panel-phone', PHONE);

  await page.locator('#nav').getByRole('link', { name: 'Estado' }).click();
  await page.getByRole('heading', { level: 1, name: 'Estado del equipo' }).waitFor();
  await banner.waitFor();
  assert.match(await page.locator('#clock-state').textContent(), /sin sincronizar/);
  await screenshot(page, 'reloj-estado-laptop', LAPTOP);

  await page.getByRole('button', { name: 'Ajustar con la hora de este navegador' }).click();
  await banner.waitFor({ state: 'detached' });
  await page.locator('#clock-state', { hasText: 'ajustado' }).waitFor();

  const { json: stats } = await api(app, 'GET', '/api/dashboard/stats/', { token: login.access });
  assert.equal(stats.reloj.estado, 'ajustado');
  assert.equal(stats.reloj.ultimo_salto.lecturas_corregidas, 1);
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/Bogota' }).format(new Date());
  assert.ok(stats.ultima_lectura.startsWith(today), `la lectura quedó en ${stats.ultima_lectura}, no hoy (${today})`);

  await page.locator('#nav').getByRole('link', { name: 'Panel' }).click();
  await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
  await page.locator('#last-at').waitFor();
  assert.equal(await page.locator('#clock-banner').count(), 0);
  assert.deepEqual(seen.take(), []);
});
