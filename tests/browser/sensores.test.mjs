// Sensores: the installer's view of the MQTT clients. Real MQTT connections feed the registry —
// one sensor stays connected and sends, one sends and leaves, one is refused for a wrong
// password — and the page shows each with its state, address, counts, fields and the reason
// of its last refusal, in plain Spanish, on a laptop and on a 360 px phone.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { LAPTOP, PHONE, api, launchBrowser, mqttConnect, screenshot, startAppliance, watch } from './appliance.mjs';

const ADMIN = { username: 'admin', password: 'Digestor-Prueba-2026', email: 'a@b.co' };
// The sensor account of the repository's config.toml.
const SENSOR = { username: 'sensor', password: 'cambiar-esta-clave' };
const LIVE = 'granja-sensor1';
const LONG = 'finca-la-esperanza.biodigestor-principal.sensor-de-presion-y-temperatura-del-gasometro';
const LONG_FIELD = 'nivel_de_espuma_en_la_parte_superior_de_la_bolsa_del_biodigestor';
const INTRUDER = 'granja-intruso';

let app;
let browser;
let page;
let seen;
let live;

before(async () => {
  app = await startAppliance({ admin: ADMIN, env: { BIOGESTOR_MQTT__ALLOW_ANONYMOUS: 'false' } });
  browser = await launchBrowser();
  page = browser.context.pages()[0];
  seen = watch(page, app.url);
});

after(async () => {
  await live?.close().catch(() => {});
  await browser?.close();
  if (app) {
    if (process.exitCode && process.env.BIOGESTOR_UI_LOG) console.error(app.log());
    await app.stop();
  }
});

/** The registry as the API lists it, once `ok` holds (it is fed asynchronously). */
async function waitSensors(token, ok) {
  const deadline = Date.now() + 15_000;
  let last;
  for (;;) {
    last = await api(app, 'GET', '/api/dashboard/sensors/', { token });
    if (last.status === 200 && ok(last.json.sensores)) return last.json.sensores;
    if (Date.now() > deadline) assert.fail(`el registro de sensores no llegó al estado esperado: ${JSON.stringify(last.json)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The card of one sensor, found by its visible name. */
function card(clientId) {
  return page.locator('.sensor').filter({ has: page.getByRole('heading', { level: 3, name: clientId, exact: true }) });
}

/** Screenshots on a laptop and on a 360 px phone, where nothing may stick out sideways. */
async function shots(name) {
  await screenshot(page, `${name}-laptop`, LAPTOP);
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(300);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= PHONE.width, `${name}: la página mide ${width} px de ancho en un teléfono de ${PHONE.width} px`);
  await screenshot(page, `${name}-phone`, PHONE);
  await page.setViewportSize(LAPTOP);
}

test('sensores: cada cliente MQTT aparece con su estado, dirección, contadores, campos y último rechazo', { timeout: 90_000 }, async () => {
  live = await mqttConnect(app, LIVE, SENSOR);
  live.publish('Prueba', { presion: 1001.2, temperatura: 31.5 });
  live.publish('Prueba', { presion: 1001.4, temperatura: 31.6, humedad: 82 });
  const gone = await mqttConnect(app, LONG, SENSOR);
  gone.publish('Prueba', { presion: 999.1, [LONG_FIELD]: 3 });
  await gone.close();
  await assert.rejects(mqttConnect(app, INTRUDER, { username: SENSOR.username, password: 'equivocada' }));

  const token = (await api(app, 'POST', '/api/iniciar-sesion/', { body: ADMIN })).json.access;
  const by = (list, id) => list.find((s) => s.client_id === id);
  await waitSensors(token, (list) => by(list, LIVE)?.aceptados === 2 && by(list, LONG)?.conectado === false
    && by(list, LONG)?.aceptados === 1 && by(list, INTRUDER)?.rechazados >= 1);

  await page.goto(`${app.url}/#/acceso`);
  await page.getByLabel('Usuario', { exact: true }).fill(ADMIN.username);
  await page.getByLabel('Contraseña', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Entrar' }).click();
  await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
  await page.locator('#nav').getByRole('link', { name: 'Sensores' }).click();
  await page.getByRole('heading', { level: 1, name: 'Sensores' }).waitFor();

  const on = card(LIVE);
  await on.waitFor();
  const text = await on.textContent();
  assert.match(text, /conectado/);
  assert.doesNotMatch(text, /desconectado/);
  assert.match(text, /último dato hace \d+ s/);
  assert.match(text, /Usuario MQTT\s*sensor/);
  assert.match(text, /Dirección\s*127\.0\.0\.1:\d+/);
  assert.match(text, /Mensajes aceptados\s*2/);
  assert.deepEqual(await on.locator('.fields .tag').allTextContents(), ['humedad', 'presion', 'temperatura']);
  assert.equal(await on.evaluate((el) => el.classList.contains('silent')), false);

  const off = card(LONG);
  assert.match(await off.textContent(), /desconectado/);
  await off.locator('.fields .tag').filter({ hasText: LONG_FIELD }).waitFor();

  // refused, never sent anything: it stands out, and the reason is in words
  const refused = card(INTRUDER);
  assert.equal(await refused.evaluate((el) => el.classList.contains('silent')), true);
  const r = await refused.textContent();
  assert.match(r, /nunca envió datos/);
  assert.match(r, /Último rechazo\s*usuario o clave incorrectos/);
  assert.doesNotMatch(r, /bad_credentials/);

  assert.match(await page.locator('#sensors-stats').textContent(), /Conectados\s*1/);
  await shots('sensores');
  assert.deepEqual(seen.take(), []);
});

test('sensores: un sensor sin datos hace más de 15 minutos se destaca', { timeout: 60_000 }, async () => {
  // Waiting 15 minutes is no test: the API's answer is aged instead, as after two hours of silence.
  await page.route('**/api/dashboard/sensors/', async (route) => {
    const resp = await route.fetch();
    const body = await resp.json();
    for (const s of body.sensores) if (s.client_id === LIVE) s.silencio_s = 2 * 3600 + 60;
    await route.fulfill({ response: resp, json: body });
  });
  await page.reload();
  const on = card(LIVE);
  await on.filter({ hasText: 'sin datos hace 2 h' }).waitFor();
  assert.equal(await on.evaluate((el) => el.classList.contains('silent')), true);
  // the colour differs from a sensor that sends
  const border = await on.evaluate((el) => getComputedStyle(el).borderLeftColor);
  assert.notEqual(border, 'rgb(30, 142, 62)');
  await screenshot(page, 'sensores-silencio-phone', PHONE);
  await page.unroute('**/api/dashboard/sensors/');
  assert.deepEqual(seen.take(), []);
});
