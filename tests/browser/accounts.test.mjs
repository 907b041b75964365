// Account administration in the bundled web UI: rejecting a registration, resetting a forgotten
// password, disabling, enabling and deleting an account on the Usuarios page, the login
// lockouts shown there, and changing one's own password on Mi cuenta.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { LAPTOP, PHONE, api, launchBrowser, screenshot, startAppliance, watch } from './appliance.mjs';

const ADMIN = { username: 'admin', password: 'Digestor-Prueba-2026', email: 'a@b.co' };
const WORKER = { username: 'operario', password: 'Campo-Biogas-7319', email: 'operario@finca.co' };
const STEP = { timeout: 60_000 };

let app;
let browser;
let page;
let seen;
let adminToken;

async function register(user) {
  const r = await api(app, 'POST', '/api/crear-usuario/', {
    body: { username: user.username, email: user.email, password: user.password, password2: user.password },
  });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json.usuario.id;
}

before(async () => {
  app = await startAppliance({ admin: ADMIN });
  adminToken = (await api(app, 'POST', '/api/iniciar-sesion/', { body: ADMIN })).json.access;
  const id = await register(WORKER);
  assert.equal((await api(app, 'POST', `/api/usuario/${id}/aprobar/`, { token: adminToken })).status, 200);
  await register({ username: 'dudosa', email: 'dudosa@finca.co', password: 'Lluvia-Tarde-4410' });
  browser = await launchBrowser();
  page = browser.context.pages()[0] || (await browser.context.newPage());
  seen = watch(page, app.url);
});

after(async () => {
  await browser?.close().catch(() => {});
  if (app) {
    if (process.exitCode && process.env.BIOGESTOR_UI_LOG) console.error(app.log());
    await app.stop();
  }
});

function step(name, fn, opts = STEP) {
  test(name, opts, async () => {
    seen.take();
    await fn();
    assert.deepEqual(seen.take(), [], 'errores inesperados en la página');
  });
}

async function shots(name) {
  await screenshot(page, `${name}-laptop`, LAPTOP);
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(300);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= PHONE.width, `${name}: la página mide ${width} px de ancho en un teléfono de ${PHONE.width} px`);
  await screenshot(page, `${name}-phone`, PHONE);
  await page.setViewportSize(LAPTOP);
}

const workerRow = () => page.locator('#users-table tbody tr[data-user]').filter({ hasText: WORKER.username });
const login = (username, password) => api(app, 'POST', '/api/iniciar-sesion/', { body: { username, password } });

async function accountAction(button, confirm) {
  const panel = page.locator('#account-' + (await workerRow().getAttribute('data-user')));
  if (await panel.isHidden()) await workerRow().getByRole('button', { name: 'Cuenta', exact: true }).click();
  await panel.getByRole('button', { name: button }).click();
  if (confirm) await page.getByRole('dialog').getByRole('button', { name: confirm }).click();
  return panel;
}

step('01 usuarios: el administrador entra y ve pendientes, estado de cada cuenta y bloqueos', async () => {
  await page.goto(`${app.url}/#/acceso`);
  await page.getByLabel('Usuario', { exact: true }).fill(ADMIN.username);
  await page.getByLabel('Contraseña', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Entrar' }).click();
  await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
  await page.goto(`${app.url}/#/usuarios`);
  await page.getByRole('heading', { level: 1, name: 'Usuarios' }).waitFor();
  await page.locator('#pending li').filter({ hasText: 'dudosa' }).waitFor();
  await workerRow().locator('.state').getByText('Activa').waitFor();
  await page.locator('#lockouts').getByText('No hay bloqueos').waitFor();
  await shots('usuarios-acciones');
});

step('02 usuarios: rechazar un registro pendiente con confirmación', async () => {
  const card = page.locator('#pending li').filter({ hasText: 'dudosa' });
  await card.getByRole('button', { name: 'Rechazar' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('La solicitud se borra').waitFor();
  await dialog.getByRole('button', { name: 'Rechazar' }).click();
  await page.locator('#pending').getByText('No hay cuentas pendientes.').waitFor();
  const pending = await api(app, 'GET', '/api/usuarios/pendientes/', { token: adminToken });
  assert.equal(pending.json.total_pendientes, 0);
});

step('03 usuarios: restablecer la contraseña olvidada muestra una nueva una sola vez', async () => {
  const panel = await accountAction('Restablecer contraseña', 'Restablecer');
  const code = panel.locator('code.new-password');
  await code.waitFor();
  const generated = (await code.textContent()).trim();
  assert.match(generated, /^[A-Za-z0-9]{4}(-[A-Za-z0-9]{4}){3}$/);
  await shots('usuarios-restablecer');
  assert.equal((await login(WORKER.username, WORKER.password)).status, 401, 'la contraseña anterior ya no sirve');
  assert.equal((await login(WORKER.username, generated)).status, 200, 'la nueva sí');
  WORKER.password = generated;
});

step('04 usuarios: deshabilitar y habilitar una cuenta', async () => {
  await accountAction('Deshabilitar', 'Deshabilitar');
  await workerRow().locator('.state').getByText('Deshabilitada').waitFor();
  assert.equal((await login(WORKER.username, WORKER.password)).status, 403, 'una cuenta deshabilitada no entra');
  await shots('usuarios-deshabilitada');
  await accountAction('Habilitar');
  await workerRow().locator('.state').getByText('Activa').waitFor();
  assert.equal((await login(WORKER.username, WORKER.password)).status, 200);
});

step('05 usuarios: los bloqueos de inicio de sesión aparecen en la página', async () => {
  for (let i = 0; i < 5; i += 1) assert.equal((await login('fantasma', 'Clave-Equivocada-1')).status, 401);
  await page.reload();
  const row = page.locator('#lockouts-table tbody tr').filter({ hasText: 'fantasma' });
  await row.waitFor();
  assert.match(await row.textContent(), /127\.0\.0\.1/);
  assert.match(await row.textContent(), /bloqueado|terminó/);
  await page.locator('#lockouts-table').scrollIntoViewIfNeeded();
  await shots('usuarios-bloqueos');
});

step('06 usuarios: eliminar una cuenta con confirmación; la propia no se puede', async () => {
  await accountAction('Eliminar cuenta', 'Eliminar cuenta');
  await workerRow().first().waitFor({ state: 'detached' });
  assert.equal((await login(WORKER.username, WORKER.password)).status, 401);
  const mine = page.locator('#users-table tbody tr[data-user]').filter({ hasText: ADMIN.username });
  await mine.getByRole('button', { name: 'Cuenta', exact: true }).click();
  const panel = page.locator('.account-panel').filter({ hasText: 'Es tu cuenta' });
  await panel.waitFor();
  assert.equal(await panel.getByRole('button', { name: 'Eliminar cuenta' }).count(), 0);
  assert.equal(await panel.getByRole('button', { name: 'Deshabilitar' }).count(), 0);
});

step('07 mi cuenta: cambiar la propia contraseña sin perder la sesión', async () => {
  await page.locator('#who-name').click();
  await page.getByRole('heading', { level: 1, name: 'Mi cuenta' }).waitFor();
  const form = page.locator('#password-form');
  seen.expect(/\/api\/usuario\/cambiar-clave\/$/, 400);
  await form.getByLabel('Contraseña actual').fill('no-es-la-mia');
  await form.getByLabel('Contraseña nueva', { exact: true }).fill('Otra-Clave-Admin-55');
  await form.getByLabel('Repite la contraseña nueva').fill('Otra-Clave-Admin-55');
  await form.getByRole('button', { name: 'Cambiar contraseña' }).click();
  await form.locator('#pw-old_password-error').filter({ hasText: 'no es correcta' }).waitFor();
  await shots('cuenta-error');
  await form.getByLabel('Contraseña actual').fill(ADMIN.password);
  await form.getByLabel('Contraseña nueva', { exact: true }).fill('Otra-Clave-Admin-55');
  await form.getByLabel('Repite la contraseña nueva').fill('Otra-Clave-Admin-55');
  await form.getByRole('button', { name: 'Cambiar contraseña' }).click();
  await page.locator('#toast').filter({ hasText: 'Contraseña cambiada' }).waitFor();
  // the other session (the test's token) ended; this one goes on
  assert.equal((await api(app, 'GET', '/api/usuarios/', { token: adminToken })).status, 401);
  await page.getByRole('link', { name: 'Usuarios' }).click();
  await page.getByRole('heading', { level: 1, name: 'Usuarios' }).waitFor();
  await page.locator('#users-table').waitFor();
  assert.equal((await login(ADMIN.username, 'Otra-Clave-Admin-55')).status, 200);
  await page.goto(`${app.url}/#/cuenta`);
  await page.getByRole('heading', { level: 1, name: 'Mi cuenta' }).waitFor();
  await shots('cuenta');
});
