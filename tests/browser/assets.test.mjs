// The served UI stands alone on a farm LAN without internet: no page or asset refers to another
// origin, every asset and module import is versioned (and so cached for a year), nothing falls
// back to index.html by mistake, and the bundle's size is reported.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { api, launchBrowser, startAppliance, watch } from './appliance.mjs';

const ADMIN = { username: 'admin', password: 'Digestor-Prueba-2026', email: 'a@b.co' };
const ROUTES = ['acceso', 'registro', 'configuracion', 'panel', 'produccion', 'llenados', 'sensores', 'reportes', 'usuarios', 'estado', 'cuenta'];

let app;
const assets = new Map(); // path?query -> {type, body, cache}

before(async () => {
  app = await startAppliance({ admin: ADMIN });
});

after(async () => {
  await app?.stop();
});

/** A line that is only a comment (uPlot's sources cite web pages in comments). */
function isCommentLine(line) {
  const t = line.trim();
  return t.startsWith('//') || t.startsWith('*') || t.startsWith('/*') || t.startsWith('<!--');
}

function outsideUrls(text, origin) {
  const found = [];
  text.split('\n').forEach((line, i) => {
    if (isCommentLine(line)) return;
    for (const m of line.matchAll(/https?:\/\/[^\s'"`)<>]+/g)) {
      if (!m[0].startsWith(origin)) found.push(`línea ${i + 1}: ${m[0]}`);
    }
  });
  return found;
}

/** Asset URLs a file refers to: HTML src/href, CSS url(), static and literal dynamic imports. */
function references(text, type) {
  const refs = [];
  if (type.includes('html')) for (const m of text.matchAll(/\s(?:src|href)="([^"#][^"]*)"/g)) refs.push(m[1]);
  if (type.includes('css')) for (const m of text.matchAll(/url\(\s*['"]?([^'")]+)['"]?\s*\)/g)) refs.push(m[1]);
  if (type.includes('javascript')) {
    for (const m of text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]/gm)) refs.push(m[1]);
    for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) refs.push(m[1]);
  }
  return refs.filter((r) => !r.startsWith('data:'));
}

async function fetchAsset(url) {
  const r = await fetch(url, { headers: { 'Accept-Encoding': 'gzip' } });
  return { status: r.status, type: r.headers.get('content-type') || '', cache: r.headers.get('cache-control') || '', body: await r.text() };
}

test('la página y todos sus recursos vienen del propio equipo y están versionados', async (t) => {
  const index = await fetchAsset(`${app.url}/`);
  assert.equal(index.status, 200);
  assert.match(index.cache, /no-cache/);
  assert.ok(!index.body.includes('__V__'), 'index.html conserva __V__ sin sustituir');
  const queue = references(index.body, index.type).map((r) => new URL(r, `${app.url}/`).href);

  // Modules the pages import at run time: let the browser load every page and record them.
  const browser = await launchBrowser();
  try {
    const page = browser.context.pages()[0];
    const seen = watch(page, app.url);
    page.on('request', (r) => {
      const u = new URL(r.url());
      const kind = r.resourceType();
      if (u.origin === app.url && ['script', 'stylesheet', 'image', 'font', 'media', 'manifest'].includes(kind)) queue.push(u.href);
    });
    await page.goto(`${app.url}/#/acceso`);
    await page.getByLabel('Usuario', { exact: true }).fill(ADMIN.username);
    await page.getByLabel('Contraseña', { exact: true }).fill(ADMIN.password);
    await page.getByRole('button', { name: 'Entrar' }).click();
    await page.getByRole('heading', { level: 1, name: 'Panel' }).waitFor();
    for (const r of ROUTES) {
      await page.goto(`${app.url}/#/${r}`);
      await page.locator('main h1').first().waitFor();
    }
    const problems = seen.take().filter((p) => p.includes('fuera de la aplicación'));
    assert.deepEqual(problems, [], 'el navegador pidió algo fuera de la aplicación');
  } finally {
    await browser.close();
  }

  const problems = [];
  let raw = Buffer.byteLength(index.body);
  let gz = gzipSync(index.body, { level: 9 }).length;
  for (const o of outsideUrls(index.body, app.url)) problems.push(`index.html ${o}`);
  while (queue.length) {
    const href = queue.shift();
    const u = new URL(href);
    const key = u.pathname + u.search;
    if (assets.has(key)) continue;
    const a = await fetchAsset(href);
    assets.set(key, a);
    if (a.status !== 200) problems.push(`${key}: HTTP ${a.status}`);
    if (a.type.includes('text/html')) problems.push(`${key}: se sirvió index.html en su lugar (ruta equivocada)`);
    if (!u.search.startsWith('?v=') || u.search.includes('__V__')) problems.push(`${key}: sin versión ?v=`);
    if (!a.cache.includes('immutable')) problems.push(`${key}: Cache-Control ${a.cache}`);
    if (a.body.includes('__V__')) problems.push(`${key}: conserva __V__ sin sustituir`);
    for (const o of outsideUrls(a.body, app.url)) problems.push(`${key} ${o}`);
    raw += Buffer.byteLength(a.body);
    gz += gzipSync(a.body, { level: 9 }).length;
    for (const r of references(a.body, a.type)) queue.push(new URL(r, href).href);
  }
  assert.ok(assets.size >= 10, `solo se encontraron ${assets.size} recursos`);
  t.diagnostic(`${assets.size + 1} archivos; ${(raw / 1024).toFixed(1)} KiB sin comprimir, ${(gz / 1024).toFixed(1)} KiB con gzip`);
  assert.deepEqual(problems, []);
});

test('los recursos se sirven comprimidos y una ruta de la interfaz devuelve la aplicación', async () => {
  const r = await fetch(`${app.url}/app.js?v=x`, { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(r.headers.get('content-encoding'), 'gzip');
  assert.match(r.headers.get('content-type'), /javascript/);
  const deep = await fetch(`${app.url}/panel`);
  assert.match(await deep.text(), /<title>Biogestor<\/title>/);
  const missing = await api(app, 'GET', '/api/no-existe/');
  assert.equal(missing.status, 404);
  assert.ok(missing.json && missing.json.detail, 'las rutas /api/ desconocidas responden JSON, no la página');
});
