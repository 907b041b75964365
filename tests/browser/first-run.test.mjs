// First run of a new appliance: no accounts yet, so the administrator is created in the browser
// with the one-time setup code that the appliance wrote to its data folder.

import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { PHONE, launchBrowser, screenshot, startAppliance, watch } from './appliance.mjs';

let app;
let browser;

before(async () => {
  app = await startAppliance();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await app?.stop();
});

test('configuración inicial: el código de un solo uso crea el administrador', { timeout: 60_000 }, async () => {
  const code = (await fs.readFile(path.join(app.dataDir, 'setup-code'), 'utf8')).trim();
  const page = browser.context.pages()[0];
  const seen = watch(page, app.url);
  await page.goto(`${app.url}/`);
  await page.getByRole('link', { name: /Crear el administrador/ }).click();
  await page.getByRole('heading', { level: 1, name: 'Configuración inicial' }).waitFor();
  const fill = async (setupCode) => {
    await page.getByLabel('Código de configuración').fill(setupCode);
    await page.getByLabel('Usuario', { exact: true }).fill('jefa');
    await page.getByLabel('Correo electrónico').fill('jefa@finca.co');
    await page.getByLabel('Contraseña', { exact: true }).fill('Biodigestor-Norte-88');
    await page.getByLabel('Repite la contraseña').fill('Biodigestor-Norte-88');
    await page.getByRole('button', { name: 'Crear administrador' }).click();
  };
  // a wrong code is reported under its field
  seen.expect(/\/api\/crear-usuario\/$/, 400);
  await fill('AAAA-BBBB-CCCC');
  await page.locator('#reg-setup_code-error').filter({ hasText: 'no es válido' }).waitFor();
  await screenshot(page, 'configuracion-phone', PHONE);
  // the right one makes the administrator, who is logged in at once
  await fill(code.toLowerCase());
  await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
  assert.deepEqual(await page.locator('#nav a').allTextContents(), ['Panel', 'Producción', 'Llenados', 'Alarmas', 'Sensores', 'Reportes', 'Usuarios', 'Estado']);
  assert.deepEqual(seen.take(), []);
});
