// The web interface over HTTPS with the unit's self-signed certificate (`biogestor tls-cert`):
// Chromium trusts exactly that certificate's key (as a browser does once the operator accepts
// it), logs in, and the live panel receives readings over wss://.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { BIN, launchBrowser, screenshot, simulate, startAppliance, watch } from './appliance.mjs';

const run = promisify(execFile);
const ADMIN = { username: 'admin', password: 'Digestor-Prueba-2026', email: 'a@b.co' };

let app;
let browser;
let certDir;
let httpsPort;

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** base64 SHA-256 of the certificate's public key, the form Chromium pins. */
async function spkiHash(cert) {
  const { stdout } = await run('sh', ['-c',
    'openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64', 'sh', cert]);
  return stdout.trim();
}

before(async () => {
  certDir = await fs.mkdtemp(path.join(os.tmpdir(), 'biogestor-tls-'));
  await run(BIN, ['tls-cert', '--out-dir', certDir]);
  httpsPort = await freePort();
  app = await startAppliance({
    admin: ADMIN,
    env: {
      BIOGESTOR_HTTP__TLS_BIND: `127.0.0.1:${httpsPort}`,
      BIOGESTOR_TLS__CERT: path.join(certDir, 'cert.pem'),
      BIOGESTOR_TLS__KEY: path.join(certDir, 'key.pem'),
    },
  });
  const pin = await spkiHash(path.join(certDir, 'cert.pem'));
  browser = await launchBrowser({
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${pin}`],
  });
});

after(async () => {
  await browser?.close();
  await app?.stop();
  if (certDir) await fs.rm(certDir, { recursive: true, force: true });
});

test('https: acceso y panel en vivo por wss con el certificado del equipo', { timeout: 90_000 }, async () => {
  const origin = `https://localhost:${httpsPort}`;
  const page = browser.context.pages()[0];
  const seen = watch(page, origin);
  await page.goto(`${origin}/#/acceso`);
  await page.getByLabel('Usuario', { exact: true }).fill(ADMIN.username);
  await page.getByLabel('Contraseña', { exact: true }).fill(ADMIN.password);
  await page.getByRole('button', { name: 'Entrar' }).click();
  const conn = page.locator('#conn');
  await conn.filter({ hasText: 'conectado' }).waitFor({ timeout: 20_000 });
  await simulate(app, ['--interval', '0.1', '--count', '5']);
  await page.locator('.tile[data-ch="presion"] .v').filter({ hasText: /\d/ }).waitFor({ timeout: 20_000 });
  assert.equal(new URL(page.url()).protocol, 'https:');
  await screenshot(page, 'tls-panel');
  assert.deepEqual(seen.take(), []);
});
