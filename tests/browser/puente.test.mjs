// Estado shows the bridge to a central broker: here one that cannot connect (nothing listens
// on its port), so the section says "sin conexión", the reading waiting and the last error.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';

import { api, launchBrowser, publishJson, startAppliance, watch } from './appliance.mjs';

const ADMIN = { username: 'admin', password: 'Digestor-Prueba-2026', email: 'a@b.co' };

let app;
let browser;
let page;
let seen;
let token;

/** A loopback port nothing listens on. */
async function closedPort() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

before(async () => {
  const port = await closedPort();
  app = await startAppliance({
    admin: ADMIN,
    env: { BIOGESTOR_BRIDGE__URL: `mqtt://127.0.0.1:${port}`, BIOGESTOR_BRIDGE__SITE_ID: 'finca-1' },
  });
  token = (await api(app, 'POST', '/api/iniciar-sesion/', { body: ADMIN })).json.access;
  browser = await launchBrowser();
  page = browser.context.pages()[0] || (await browser.context.newPage());
  seen = watch(page, app.url);
});

after(async () => {
  await browser?.close().catch(() => {});
  if (app) await app.stop();
});

test('estado: envío a la central sin conexión, con la lectura por enviar y el error', { timeout: 90_000 }, async () => {
  await publishJson(app, 'Prueba', { presion: 1001.5, temperatura: 35.1 });
  const deadline = Date.now() + 20_000;
  while ((await api(app, 'GET', '/api/puente/', { token })).json.pendientes < 1) {
    assert.ok(Date.now() < deadline, 'la lectura no quedó en cola');
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.goto(`${app.url}/`);
  await page.getByLabel('Usuario', { exact: true }).fill(ADMIN.username);
  await page.getByLabel('Contraseña', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Entrar' }).click();
  await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
  await page.goto(`${app.url}/#/estado`);
  await page.getByRole('heading', { level: 3, name: 'Envío a la central' }).waitFor();
  assert.match(await page.locator('#br-state').textContent(), /sin conexión/);
  assert.match(await page.locator('#br-state').textContent(), /127\.0\.0\.1:\d+ · biogestor\/finca-1/);
  assert.match(await page.locator('#br-waiting').textContent(), /^Lecturas por enviar1/);
  assert.match(await page.locator('#br-error').textContent(), /no se pudo conectar con el broker central/);
  assert.deepEqual(seen.take(), [], 'errores inesperados en la página');
});
