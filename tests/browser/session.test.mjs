// The session in the browser: the access token is renewed before it expires (with rotation of
// the refresh token), and a session the server no longer accepts sends the user back to the
// login page with a message. Access tokens last one minute here so the renewal happens soon.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { api, launchBrowser, startAppliance, watch } from './appliance.mjs';

const ADMIN = { username: 'admin', password: 'Digestor-Prueba-2026', email: 'a@b.co' };

let app;
let browser;
let page;
let seen;

before(async () => {
  app = await startAppliance({ admin: ADMIN, env: { BIOGESTOR_AUTH__ACCESS_MINUTES: '1' } });
  browser = await launchBrowser();
  page = browser.context.pages()[0];
  seen = watch(page, app.url);
});

after(async () => {
  await browser?.close();
  await app?.stop();
});

const stored = () => page.evaluate(() => JSON.parse(sessionStorage.getItem('biogestor.sesion') || 'null'));

test('sesión: el token se renueva antes de caducar y el anterior deja de valer', { timeout: 120_000 }, async () => {
  await page.goto(`${app.url}/#/acceso`);
  await page.getByLabel('Usuario', { exact: true }).fill(ADMIN.username);
  await page.getByLabel('Contraseña', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Entrar' }).click();
  await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
  const first = await stored();
  await page.waitForFunction((old) => {
    const s = JSON.parse(sessionStorage.getItem('biogestor.sesion') || 'null');
    return s && s.refresh !== old;
  }, first.refresh, { timeout: 75_000, polling: 1000 });
  const second = await stored();
  assert.notEqual(second.access, first.access);
  // the first refresh token was rotated away
  assert.equal((await api(app, 'POST', '/api/refrescar-token/', { body: { refresh: first.refresh } })).status, 401);
  // past the first token's expiry the pages keep working with the new one
  await page.waitForTimeout(Math.max(0, JSON.parse(Buffer.from(first.access.split('.')[1], 'base64url')).exp * 1000 - Date.now() + 1000));
  await page.getByRole('link', { name: 'Estado' }).click();
  await page.locator('#stats-list').waitFor();
  assert.deepEqual(seen.take(), []);
});

test('sesión: si el servidor ya no acepta la sesión se vuelve al acceso con un aviso', { timeout: 30_000 }, async () => {
  const s = await stored();
  // log the session out behind the browser's back and spoil its access token
  assert.equal((await api(app, 'POST', '/api/cerrar-sesion/', { body: { refresh: s.refresh } })).status, 200);
  await page.evaluate(() => {
    const x = JSON.parse(sessionStorage.getItem('biogestor.sesion'));
    x.access = `${x.access}x`;
    sessionStorage.setItem('biogestor.sesion', JSON.stringify(x));
  });
  seen.expect(/\/api\/(usuario\/actual|refrescar-token)\/$/, 401);
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Iniciar sesión' }).waitFor();
  await page.getByText('Tu sesión terminó. Inicia sesión de nuevo.').waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('biogestor.sesion')), null);
  assert.deepEqual(seen.take(), []);
});
