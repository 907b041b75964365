// An operator's day in the bundled web UI, in Debian's Chromium against the release binary.
// Steps that need the stage, production or report endpoints say so in their names
// ("[API de llenados]", "[API de producción]", "[API de reportes]").

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { after, before, test } from 'node:test';

import { LAPTOP, PHONE, SCREENSHOTS, api, launchBrowser, publishJson, screenshot, simulate, startAppliance, watch } from './appliance.mjs';

const ADMIN = { username: 'admin', password: 'Digestor-Prueba-2026', email: 'a@b.co' };
const OPERATOR = { username: 'operaria', password: 'Campo-Biogas-7319', email: 'operaria@finca.co' };
const STEP = { timeout: 90_000 };

let app;
let admin; // browser of the administrator
let page;
let seen;
let second; // browser of the second user
let page2;
let seen2;
let adminToken;

before(async () => {
  app = await startAppliance({ admin: ADMIN });
  adminToken = (await api(app, 'POST', '/api/iniciar-sesion/', { body: ADMIN })).json.access;
  admin = await launchBrowser();
  page = admin.context.pages()[0] || (await admin.context.newPage());
  seen = watch(page, app.url);
});

after(async () => {
  await admin?.close().catch(() => {});
  await second?.close().catch(() => {});
  if (app) {
    if (process.exitCode && process.env.BIOGESTOR_UI_LOG) console.error(app.log());
    await app.stop();
  }
});

/** Fails with a clear message when an endpoint the step needs does not exist yet. */
async function needEndpoint(method, pathname) {
  const r = await api(app, method, pathname, { token: adminToken });
  if (r.status === 404 && r.json && r.json.detail === 'No encontrado.') {
    assert.fail(`falta el endpoint ${method} ${pathname} (404): este paso espera a que se implemente`);
  }
}

/** Every step starts clean and ends with nothing unexpected on the page. */
function step(name, fn, opts = STEP) {
  test(name, opts, async () => {
    seen.take();
    seen2?.take();
    await fn();
    assert.deepEqual(seen.take(), [], 'errores inesperados en la página del administrador');
    if (seen2) assert.deepEqual(seen2.take(), [], 'errores inesperados en la página del segundo usuario');
  });
}

async function goto(p, hash, heading) {
  await p.goto(`${app.url}/#/${hash}`);
  await p.getByRole('heading', { level: 1, name: heading }).waitFor();
}

async function navTexts(p) {
  return p.locator('#nav a').allTextContents();
}

/** Screenshots on a laptop and on a 360 px phone, where nothing may stick out sideways. */
async function shots(p, name) {
  await screenshot(p, `${name}-laptop`, LAPTOP);
  await p.setViewportSize(PHONE);
  await p.waitForTimeout(300);
  const width = await p.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= PHONE.width, `${name}: la página mide ${width} px de ancho en un teléfono de ${PHONE.width} px`);
  await screenshot(p, `${name}-phone`, PHONE);
  await p.setViewportSize(LAPTOP);
}

step('01 acceso: sin sesión se pide iniciar sesión y una contraseña errónea se rechaza', async () => {
  await page.goto(`${app.url}/`);
  await page.getByRole('heading', { level: 1, name: 'Iniciar sesión' }).waitFor();
  await shots(page, 'acceso');
  seen.expect(/\/api\/iniciar-sesion\/$/, 401);
  await page.getByLabel('Usuario', { exact: true }).fill(ADMIN.username);
  await page.getByLabel('Contraseña', { exact: true }).fill('equivocada-123');
  await page.getByRole('button', { name: 'Entrar' }).click();
  await page.locator('#login-form .form-error').filter({ hasText: 'Usuario o contraseña incorrectos' }).waitFor();
});

step('02 acceso: el administrador inicia sesión y llega al Panel con toda la navegación', async () => {
  await page.getByLabel('Contraseña', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Entrar' }).click();
  await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
  assert.match(page.url(), /#\/panel$/);
  assert.deepEqual(await navTexts(page), ['Panel', 'Producción', 'Llenados', 'Alarmas', 'Sensores', 'Reportes', 'Usuarios', 'Estado']);
  const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem('biogestor.sesion')));
  assert.ok(stored.access && stored.refresh, 'los tokens se guardan en sessionStorage');
  await page.locator('#conn').filter({ hasText: 'conectado' }).waitFor();
});

step('03 llenados: crear un llenado con errores de validación por campo y valores por defecto explicados [API de llenados]', async () => {
  await needEndpoint('GET', '/api/dashboard/fillings/');
  await goto(page, 'llenados', 'Llenados');
  const form = page.locator('#stage-form');
  await form.waitFor();
  // the defaults of the optional fields are explained beside them
  await form.getByText('Vacía: hoy, en la zona horaria del sitio.').waitFor();
  await form.getByText('Vacío: el siguiente al último (N.º 1).').waitFor();
  await form.getByText('Vacío: «Sin especificar».').waitFor();
  // the API's validation messages appear under each field
  seen.expect(/\/api\/dashboard\/fillings\/$/, 400);
  await form.getByRole('button', { name: 'Crear llenado' }).click();
  await form.locator('#f-material_amount_kg-error').waitFor();
  assert.equal(await form.locator('#f-material_amount_kg').getAttribute('aria-invalid'), 'true');
  await form.getByLabel('Tipo de material').selectOption('bovino');
  await form.locator('#f-material_type-hint').getByText('B0 0,1 Nm³ CH₄/kg SV', { exact: false }).waitFor();
  await form.getByLabel('Cantidad de material (kg)').fill('1200');
  await form.getByLabel('Humedad del material (%)').fill('85');
  await form.getByLabel('Agua añadida (m³)').fill('1,5');
  await form.getByLabel('Temperatura del digestor (°C)').fill('30');
  await form.getByRole('button', { name: 'Crear llenado' }).click();
  await page.locator('#active-card').getByRole('heading', { name: 'Llenado activo: N.º 1' }).waitFor();
  const row = page.locator('#stages-table tbody tr').first();
  await row.getByText('activo').waitFor();
  assert.match(await row.textContent(), /Sin especificar/);
  await shots(page, 'llenados');
});

step('04 panel: las lecturas simuladas cambian los mosaicos en vivo, también un canal adicional', async () => {
  await goto(page, 'panel', 'Panel');
  await page.locator('#conn').filter({ hasText: 'conectado' }).waitFor();
  await page.evaluate(() => {
    window.__presion = [];
    new MutationObserver(() => {
      const v = document.querySelector('.tile[data-ch="presion"] .v');
      if (v && window.__presion[window.__presion.length - 1] !== v.textContent) window.__presion.push(v.textContent);
    }).observe(document.getElementById('tiles'), { subtree: true, childList: true, characterData: true });
  });
  await simulate(app, ['--interval', '0.2', '--count', '30']);
  await page.waitForFunction(() => window.__presion.length >= 3, null, { timeout: 10_000 });
  for (const ch of ['presion', 'temperatura', 'humedad', 'calidad', 'caudal_gas', 'gas_total_m3']) {
    const v = await page.locator(`.tile[data-ch="${ch}"] .v`).textContent();
    assert.match(v, /^-?[\d.]+(,\d+)?$/, `mosaico ${ch} = ${v}`);
  }
  await page.locator('#last-age').filter({ hasText: /^hace \d+ s$/ }).waitFor();
  // a channel the appliance does not know gets its own tile as soon as it appears
  await publishJson(app, 'Prueba', { presion: 1001.5, ph_digestor: 7.12 });
  await page.locator('.tile[data-ch="ph_digestor"] .v').filter({ hasText: '7,12' }).waitFor();
  assert.match(await page.locator('.tile[data-ch="ph_digestor"]').textContent(), /canal adicional/);
});

step('05 panel: historial de 24 h por canal y vista en portátil y teléfono', async () => {
  // the live feed is ahead of the disk by up to the commit interval (1 s): wait for the store
  for (let i = 0; i < 50; i++) {
    const s = await api(app, 'GET', '/api/dashboard/stats/', { token: adminToken });
    if (s.json.lecturas_total >= 31) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
  for (const ch of ['presion', 'temperatura', 'ph_digestor']) {
    await page.locator(`#charts figure[data-ch="${ch}"] canvas`).waitFor();
  }
  // tiles are filled from the stored readings before any live message
  assert.match(await page.locator('.tile[data-ch="presion"] .v').textContent(), /^1001,5$/);
  await page.locator('#conn').filter({ hasText: 'conectado' }).waitFor();
  await shots(page, 'panel');
  // on a phone the navigation folds into a menu button that the keyboard can open and close
  await page.setViewportSize(PHONE);
  const menu = page.getByRole('button', { name: 'Menú' });
  await menu.click();
  assert.equal(await menu.getAttribute('aria-expanded'), 'true');
  await page.getByRole('link', { name: 'Producción' }).waitFor();
  await page.screenshot({ path: `${SCREENSHOTS}/menu-phone.png` });
  await page.keyboard.press('Escape');
  assert.equal(await menu.getAttribute('aria-expanded'), 'false');
  await page.setViewportSize(LAPTOP);
});

step('06 producción: curvas esperada y real, totales y días sin datos [API de producción]', async () => {
  await needEndpoint('GET', '/api/dashboard/production/current/');
  await goto(page, 'produccion', 'Producción');
  await page.locator('#cum-chart canvas').waitFor();
  await page.locator('#daily-chart canvas').waitFor();
  const legend = await page.locator('#cum-chart .u-legend').textContent();
  assert.match(legend, /Esperada/);
  assert.match(legend, /Real/);
  const summary = await page.locator('#prod-summary').textContent();
  for (const label of ['Producción real', 'Esperada a la fecha', 'Diferencia', 'Rendimiento', 'Días sin datos']) assert.match(summary, new RegExp(label));
  await shots(page, 'produccion');
});

step('07 reportes: el final pide confirmación; se genera uno normal y se descarga su PDF [API de reportes]', async () => {
  await needEndpoint('GET', '/api/dashboard/report/history/');
  await goto(page, 'reportes', 'Reportes');
  const form = page.locator('#report-form');
  await form.waitFor();
  await form.getByLabel(/Final/).check();
  await form.getByRole('button', { name: 'Generar reporte' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByText('cierra el llenado', { exact: false }).waitFor();
  await dialog.getByRole('button', { name: 'Cancelar' }).click();
  await dialog.waitFor({ state: 'detached' });
  await form.getByLabel(/Normal/).check();
  await form.getByLabel(/Observaciones/).fill('Carga con estiércol fresco; sin fugas.');
  await form.getByRole('button', { name: 'Generar reporte' }).click();
  const created = form.locator('#created');
  await created.getByRole('button', { name: /Descargar PDF/ }).waitFor();
  const [download] = await Promise.all([page.waitForEvent('download'), created.getByRole('button', { name: /Descargar PDF/ }).click()]);
  const file = await download.path();
  const head = (await fs.readFile(file)).subarray(0, 4).toString('latin1');
  assert.equal(head, '%PDF', `el archivo descargado (${download.suggestedFilename()}) no es un PDF`);
  const hist = page.locator('#history-table tbody tr').first();
  await hist.waitFor();
  assert.match(await hist.textContent(), /Carga con estiércol fresco/);
  // the CSV of the same report comes from the history, and the report can be regenerated
  const [csv] = await Promise.all([page.waitForEvent('download'), hist.getByRole('button', { name: /Descargar CSV/ }).click()]);
  assert.match(csv.suggestedFilename(), /\.csv$/);
  assert.ok((await fs.readFile(await csv.path(), 'utf8')).length > 10, 'CSV vacío');
  await hist.getByRole('button', { name: 'Regenerar' }).click();
  await page.locator('#history-table tbody tr').first().getByText('regenerado', { exact: false }).waitFor();
  await shots(page, 'reportes');
});

step('08 registro: un segundo usuario crea su cuenta y queda pendiente de aprobación', async () => {
  second = await launchBrowser();
  page2 = second.context.pages()[0] || (await second.context.newPage());
  seen2 = watch(page2, app.url);
  await page2.goto(`${app.url}/#/acceso`);
  await page2.getByRole('link', { name: 'Crear una cuenta' }).click();
  await page2.getByRole('heading', { level: 1, name: 'Crear cuenta' }).waitFor();
  await page2.getByLabel('Usuario', { exact: true }).fill(OPERATOR.username);
  await page2.getByLabel('Correo electrónico').fill(OPERATOR.email);
  await page2.getByLabel('Nombre (opcional)').fill('Rosa');
  // the API's password rules come back under the field
  seen2.expect(/\/api\/crear-usuario\/$/, 400);
  await page2.getByLabel('Contraseña', { exact: true }).fill('12345678');
  await page2.getByLabel('Repite la contraseña').fill('12345678');
  await page2.getByRole('button', { name: 'Crear cuenta' }).click();
  await page2.locator('#reg-password-error').filter({ hasText: 'completamente numérica' }).waitFor();
  await screenshot(page2, 'registro-errores-phone', PHONE);
  await page2.getByLabel('Contraseña', { exact: true }).fill(OPERATOR.password);
  await page2.getByLabel('Repite la contraseña').fill(OPERATOR.password);
  await page2.getByRole('button', { name: 'Crear cuenta' }).click();
  await page2.locator('#register-done').filter({ hasText: 'pendiente de aprobación' }).waitFor();
  // a pending account cannot log in, and is told why
  seen2.expect(/\/api\/iniciar-sesion\/$/, 403);
  await page2.getByRole('link', { name: 'Ir a iniciar sesión' }).click();
  await page2.getByLabel('Usuario', { exact: true }).fill(OPERATOR.username);
  await page2.getByLabel('Contraseña', { exact: true }).fill(OPERATOR.password);
  await page2.getByRole('button', { name: 'Entrar' }).click();
  await page2.locator('#login-form .form-error').filter({ hasText: 'pendiente de aprobación' }).waitFor();
});

step('09 usuarios: el administrador aprueba al segundo usuario solo con VerDashboard', async () => {
  await goto(page, 'usuarios', 'Usuarios');
  const card = page.locator('#pending li').filter({ hasText: OPERATOR.username });
  await card.waitFor();
  await shots(page, 'usuarios');
  assert.equal(await card.getByLabel(/VerDashboard/).isChecked(), true);
  await card.getByLabel(/VerReportes/).uncheck();
  await card.getByRole('button', { name: `Aprobar a ${OPERATOR.username}` }).click();
  const row = page.locator('#users-table tbody tr').filter({ hasText: OPERATOR.username });
  await row.waitFor();
  assert.deepEqual(await row.locator('.perms .tag').allTextContents(), ['VerDashboard']);
  await page.locator('#pending').getByText('No hay cuentas pendientes.').waitFor();
  // the permission editor shows what the account has
  await row.getByRole('button', { name: 'Editar permisos' }).click();
  const editor = page.locator('.perms-form');
  await editor.waitFor();
  assert.equal(await editor.getByLabel(/VerDashboard/).isChecked(), true);
  assert.equal(await editor.getByLabel(/GenerarReportes/).isChecked(), false);
});

step('10 permisos: el segundo usuario no ve Usuarios ni Reportes y la API le responde 403', async () => {
  await page2.getByRole('button', { name: 'Entrar' }).click();
  await page2.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
  const nav = await navTexts(page2);
  assert.ok(!nav.includes('Usuarios') && !nav.includes('Reportes'), `navegación: ${nav.join(', ')}`);
  assert.ok(nav.includes('Panel') && nav.includes('Estado'));
  await page2.goto(`${app.url}/#/usuarios`);
  await page2.getByText('Tu cuenta no tiene permiso para ver esta sección.').waitFor();
  seen2.expect(/\/api\/usuarios\/$/, 403);
  const status = await page2.evaluate(async () => {
    const s = JSON.parse(sessionStorage.getItem('biogestor.sesion'));
    const r = await fetch('/api/usuarios/', { headers: { Authorization: `Bearer ${s.access}` } });
    return r.status;
  });
  assert.equal(status, 403);
});

step('11 permisos: sin VerReportes la API de reportes responde 403 al segundo usuario [API de reportes]', async () => {
  await needEndpoint('GET', '/api/dashboard/report/history/');
  seen2.expect(/\/api\/dashboard\/report\/history\/$/, 403);
  const status = await page2.evaluate(async () => {
    const s = JSON.parse(sessionStorage.getItem('biogestor.sesion'));
    const r = await fetch('/api/dashboard/report/history/', { headers: { Authorization: `Bearer ${s.access}` } });
    return r.status;
  });
  assert.equal(status, 403);
});

step('12 llenados: editar el llenado activo y cerrarlo con confirmación [API de llenados]', async () => {
  await needEndpoint('GET', '/api/dashboard/fillings/');
  await goto(page, 'llenados', 'Llenados');
  const card = page.locator('#active-card');
  await card.getByRole('button', { name: 'Editar' }).click();
  const form = page.locator('#edit-form');
  await form.getByLabel(/Personas que cargaron/).fill('Rosa y Juan');
  await form.getByRole('button', { name: 'Guardar cambios' }).click();
  await card.getByText('Rosa y Juan').waitFor();
  await card.getByRole('button', { name: 'Cerrar llenado' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('button', { name: 'Cerrar llenado' }).click();
  await page.getByText('No hay un llenado activo.', { exact: false }).waitFor();
  const row = page.locator('#stages-table tbody tr').first();
  await row.getByText('cerrado').waitFor();
  assert.match(await row.textContent(), /Rosa y Juan/);
});

step('13 estado: salud, versión, tiempo en marcha y contadores de mensajes', async () => {
  await goto(page, 'estado', 'Estado del equipo');
  const health = page.locator('#health-list');
  await health.waitFor();
  // The details of /healthz are for a session's token; without one it only says "ok".
  assert.deepEqual((await api(app, 'GET', '/healthz')).json, { status: 'ok' });
  const h = await api(app, 'GET', '/healthz', { token: adminToken });
  assert.match(await health.textContent(), new RegExp(h.json.version.replace(/\./g, '\\.')));
  const stats = page.locator('#stats-list');
  await stats.waitFor();
  const text = await stats.textContent();
  assert.match(text, /Mensajes rechazados/);
  assert.match(text, /Mensajes perdidos/);
  assert.match(text, /Lecturas en total\s*31/);
  await shots(page, 'estado');
});

step('14 acceso: cerrar sesión vuelve a la pantalla de acceso y olvida los tokens', async () => {
  await page.getByRole('button', { name: 'Cerrar sesión' }).click();
  await page.getByRole('heading', { level: 1, name: 'Iniciar sesión' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.getItem('biogestor.sesion')), null);
  await page.goto(`${app.url}/#/panel`);
  await page.getByRole('heading', { level: 1, name: 'Iniciar sesión' }).waitFor();
});
