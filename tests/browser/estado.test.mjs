// Estado shows the store's room: database size, free space, days until full, the oldest
// reading kept and the last prune, in Debian's Chromium against the release binary.

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

test('estado: tamaño de la base de datos, espacio libre, días hasta llenarse, lectura más antigua y última depuración', { timeout: 90_000 }, async () => {
  await publishJson(app, 'Prueba', { presion: 1001.5, temperatura: 35.1 });
  const deadline = Date.now() + 20_000;
  while ((await api(app, 'GET', '/api/dashboard/stats/', { token })).json.lecturas_total < 1) {
    assert.ok(Date.now() < deadline, 'la lectura no llegó');
    await new Promise((r) => setTimeout(r, 100));
  }
  const st = (await api(app, 'GET', '/healthz', { token })).json.storage;
  assert.ok(st.store_bytes > 0 && st.free_bytes > 0, JSON.stringify(st));

  await page.goto(`${app.url}/`);
  await page.getByLabel('Usuario', { exact: true }).fill(ADMIN.username);
  await page.getByLabel('Contraseña', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Entrar' }).click();
  await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
  await page.goto(`${app.url}/#/estado`);
  await page.getByRole('heading', { level: 1, name: 'Estado del equipo' }).waitFor();
  const list = page.locator('#storage-list');
  await list.waitFor();
  assert.match(await page.locator('#st-store').textContent(), /^\d[\d.,]* (kB|MB|GB)$/);
  assert.match(await page.locator('#st-free').textContent(), /^\d[\d.,]* (MB|GB)de \d[\d.,]* (MB|GB)$/);
  // A fresh service has less than an hour of growth samples: no prediction yet.
  assert.match(await page.locator('#st-days').textContent(), /^—\s*La base de datos no está creciendo/);
  const oldest = await page.locator('#st-oldest').textContent();
  assert.notEqual(oldest, 'ninguna');
  assert.match(oldest, /\d{1,2}:\d{2}/);
  assert.equal(await page.locator('#st-prune').textContent(), 'nunca');
  assert.deepEqual(seen.take(), [], 'errores inesperados en la página');
});
