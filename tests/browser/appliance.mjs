// Shared helpers of the browser tests: start the release binary on free loopback ports with a
// temporary data folder, run the simulator against it, launch Debian's Chromium with a fresh
// profile, and watch a page for console errors, failed requests and requests leaving the app.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { chromium } from 'playwright-core';

const run = promisify(execFile);

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.resolve(ROOT, process.env.BIOGESTOR_BIN || 'target/release/biogestor');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const SCREENSHOTS = path.join(ROOT, 'target', 'screenshots');
export const LAPTOP = { width: 1280, height: 800 };
export const PHONE = { width: 360, height: 740 };

// Ports already handed out in this process: the kernel may offer the same free port twice in a
// row, and an appliance given one port for HTTP and MQTT refuses to start.
const givenPorts = new Set();

async function freePort() {
  for (;;) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const { port: p } = srv.address();
        srv.close(() => resolve(p));
      });
    });
    if (!givenPorts.has(port)) {
      givenPorts.add(port);
      return port;
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `biogestor serve` with the repo's config.toml (plus `env` overrides). With `admin` the
 * administrator is first created with `biogestor user add --admin`; without it the appliance
 * starts with no accounts and a one-time setup code in its data folder.
 */
export async function startAppliance({ admin, env: extraEnv = {}, reuse } = {}) {
  await fs.access(BIN).catch(() => {
    throw new Error(`no existe el binario ${BIN}: compílalo con cargo build --release`);
  });
  // `reuse` (a stopped appliance) starts again on the same ports and data folder
  const dataDir = reuse ? reuse.dataDir : await fs.mkdtemp(path.join(os.tmpdir(), 'biogestor-ui-'));
  const httpPort = reuse ? reuse.httpPort : await freePort();
  const mqttPort = reuse ? reuse.mqttPort : await freePort();
  const env = {
    ...process.env,
    BIOGESTOR_HTTP__BIND: `127.0.0.1:${httpPort}`,
    BIOGESTOR_MQTT__BIND: `127.0.0.1:${mqttPort}`,
    BIOGESTOR_STORAGE__DATA_DIR: dataDir,
    BIOGESTOR_MQTT__ALLOW_ANONYMOUS: 'true',
    ...extraEnv,
  };
  if (admin) {
    await run(BIN, ['user', 'add', '--username', admin.username, '--password', admin.password, '--email', admin.email || 'a@b.co',
      '--admin', '--config', 'config.toml'], { cwd: ROOT, env });
  }
  const child = spawn(BIN, ['serve', '--config', 'config.toml'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const keep = (chunk) => {
    log += chunk;
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${httpPort}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`biogestor terminó al arrancar (código ${child.exitCode}):\n${log}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`biogestor no respondió en /healthz en 20 s:\n${log}`);
    }
    await sleep(100);
  }
  return {
    url,
    httpPort,
    mqttPort,
    dataDir,
    env,
    log: () => log,
    /** Stops the service; the data folder is removed unless `keepData`. */
    async stop({ keepData = false } = {}) {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      if (!keepData) await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs `biogestor simulate` against the appliance's broker; resolves when it has published. */
export async function simulate(app, args) {
  return run(BIN, ['simulate', '--port', String(app.mqttPort), ...args], { cwd: ROOT, env: app.env, timeout: 60_000 });
}

/** JSON request from the test itself (not through the browser). */
export async function api(app, method, pathname, { token, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(app.url + pathname, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  return { status: r.status, json, headers: r.headers };
}

/** Debian's Chromium, headless, with a fresh profile folder; never a downloaded browser. */
export async function launchBrowser(extra = {}) {
  const profile = await fs.mkdtemp(path.join(os.tmpdir(), 'biogestor-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: LAPTOP,
    acceptDownloads: true,
    locale: 'es-CO',
    // A zone other than the site's (America/Bogota): the UI must show the site's times anyway.
    timezoneId: 'Europe/Madrid',
    ...extra,
  });
  return {
    context,
    async close() {
      await context.close();
      await fs.rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Records what must not happen on a page: console errors, uncaught exceptions, failed or
 * unexpected 4xx/5xx responses, and any request or WebSocket to another origin.
 * `expect(re, status)` allows one kind of error response (e.g. a 401 for a wrong password).
 */
export function watch(page, origin) {
  let problems = [];
  let allowed = [];
  const isAllowed = (url, status) => allowed.some((a) => a.re.test(url) && (a.status === undefined || a.status === status));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    const at = (m.location() && m.location().url) || '';
    const status = Number((/status of (\d{3})/.exec(text) || [])[1]);
    if (text.startsWith('Failed to load resource') && isAllowed(at, status)) return;
    problems.push(`consola: ${text} ${at}`);
  });
  page.on('pageerror', (e) => problems.push(`excepción: ${e.message}`));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol === 'blob:' || u.protocol === 'data:') return;
    if (u.origin !== origin) problems.push(`petición fuera de la aplicación: ${r.url()}`);
  });
  page.on('websocket', (ws) => {
    const u = new URL(ws.url());
    const page = `${u.protocol === 'wss:' ? 'https' : 'http'}://${u.host}`;
    if (page !== origin) problems.push(`WebSocket fuera de la aplicación: ${ws.url()}`);
  });
  page.on('requestfailed', (r) => {
    const err = (r.failure() && r.failure().errorText) || '';
    if (r.url().startsWith('blob:') || err === 'net::ERR_ABORTED') return;
    problems.push(`petición fallida: ${r.method()} ${r.url()} ${err}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400 && !isAllowed(r.url(), r.status())) problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`);
  });
  return {
    expect(re, status) {
      allowed.push({ re, status });
    },
    /** Returns and forgets what was recorded (and the allowances). */
    take() {
      const p = problems;
      problems = [];
      allowed = [];
      return p;
    },
  };
}

export async function screenshot(page, name, viewport) {
  await fs.mkdir(SCREENSHOTS, { recursive: true });
  const before = page.viewportSize();
  if (viewport) {
    await page.setViewportSize(viewport);
    await sleep(400); // charts follow their container's width
  }
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (viewport && before) {
    await page.setViewportSize(before);
    await sleep(200);
  }
  return file;
}

function mqttString(s) {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function mqttPacket(type, body) {
  const lenBytes = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    lenBytes.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([type, ...lenBytes]), body]);
}

/** Publishes one JSON payload (MQTT 3.1.1, QoS 0, anonymous) and disconnects. */
export async function publishJson(app, topic, payload) {
  const sock = net.connect(app.mqttPort, '127.0.0.1');
  await new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.once('connect', resolve);
  });
  const connack = new Promise((resolve, reject) => {
    sock.once('data', (d) => (d[0] === 0x20 && d[3] === 0 ? resolve() : reject(new Error(`CONNACK inesperado ${d.toString('hex')}`))));
  });
  const connect = Buffer.concat([mqttString('MQTT'), Buffer.from([4, 0x02, 0, 30]), mqttString(`ui-test-${process.pid}`)]);
  sock.write(mqttPacket(0x10, connect));
  await connack;
  sock.write(mqttPacket(0x30, Buffer.concat([mqttString(topic), Buffer.from(JSON.stringify(payload))])));
  await new Promise((resolve) => sock.end(mqttPacket(0xe0, Buffer.alloc(0)), resolve));
}

/**
 * An MQTT 3.1.1 connection that stays open (a sensor in the field): `publish` sends JSON at
 * QoS 0, `close` disconnects cleanly. Rejects when the broker refuses the CONNECT.
 */
export async function mqttConnect(app, clientId, { username, password } = {}) {
  const sock = net.connect(app.mqttPort, '127.0.0.1');
  await new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.once('connect', resolve);
  });
  const connack = new Promise((resolve, reject) => {
    sock.once('data', (d) => (d[0] === 0x20 && d[3] === 0 ? resolve() : reject(new Error(`CONNACK ${d.toString('hex')}`))));
    sock.once('close', () => reject(new Error('conexión cerrada antes del CONNACK')));
  });
  const flags = 0x02 | (username !== undefined ? 0x80 : 0) | (password !== undefined ? 0x40 : 0);
  const parts = [mqttString('MQTT'), Buffer.from([4, flags, 0, 60]), mqttString(clientId)];
  if (username !== undefined) parts.push(mqttString(username));
  if (password !== undefined) parts.push(mqttString(password));
  sock.write(mqttPacket(0x10, Buffer.concat(parts)));
  try {
    await connack;
  } catch (e) {
    sock.destroy();
    throw e;
  }
  sock.on('error', () => {});
  return {
    publish(topic, payload) {
      sock.write(mqttPacket(0x30, Buffer.concat([mqttString(topic), Buffer.from(JSON.stringify(payload))])));
    },
    async close() {
      await new Promise((resolve) => sock.end(mqttPacket(0xe0, Buffer.alloc(0)), resolve));
    },
  };
}
