// The live feed survives a restart of the appliance: the Panel says the connection is lost and
// when it will retry, reconnects by itself with growing pauses, and shows new readings again.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, simulate, startAppliance, watch } from './appliance.mjs';

const ADMIN = { username: 'admin', password: 'Digestor-Prueba-2026', email: 'a@b.co' };

let app;
let browser;

before(async () => {
  app = await startAppliance({ admin: ADMIN });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await app?.stop();
});

test('panel: tras reiniciar el equipo la conexión en vivo se recupera sola', { timeout: 90_000 }, async () => {
  const page = browser.context.pages()[0];
  const seen = watch(page, app.url);
  await page.goto(`${app.url}/#/acceso`);
  await page.getByLabel('Usuario', { exact: true }).fill(ADMIN.username);
  await page.getByLabel('Contraseña', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Entrar' }).click();
  const conn = page.locator('#conn');
  await conn.filter({ hasText: 'conectado' }).waitFor();

  await app.stop({ keepData: true });
  await conn.filter({ hasText: /Sin conexión en vivo · reintento en \d+ s/ }).waitFor({ timeout: 15_000 });
  assert.equal(await conn.getAttribute('data-state'), 'closed');
  // while the appliance is down the browser reports the refused connections: expected here
  const outage = seen.take().filter((p) => !/ERR_CONNECTION_REFUSED|WebSocket connection to .* failed/.test(p));
  assert.deepEqual(outage, []);

  app = await startAppliance({ reuse: app });
  await conn.filter({ hasText: 'conectado' }).waitFor({ timeout: 40_000 });
  await simulate(app, ['--interval', '0.1', '--count', '5']);
  await page.locator('.tile[data-ch="presion"] .v').filter({ hasText: /\d/ }).waitFor();
  const after = seen.take().filter((p) => !/ERR_CONNECTION_REFUSED|WebSocket connection to .* failed/.test(p));
  assert.deepEqual(after, []);
});
