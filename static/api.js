// Talking to the appliance: JSON requests, the session (access + refresh tokens kept in memory
// and in sessionStorage, so a reload keeps the user logged in but closing the tab does not),
// proactive token refresh shortly before expiry, and authenticated file downloads.

const STORE_KEY = 'biogestor.sesion';
/** Refresh this long before the access token expires (less for very short-lived tokens). */
const REFRESH_MARGIN_MS = 60_000;

let session = null; // {access, refresh, user}
let refreshTimer = 0;
let refreshing = null;
let skewMs = 0; // server clock minus this browser's clock, from the Date header
const listeners = new Set();

/** An API failure: `status` 0 means the appliance could not be reached. */
export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(messageOf(status, body, retryAfter));
    this.status = status;
    this.body = body || {};
    this.fields = {};
    for (const [k, v] of Object.entries(this.body)) {
      if (k !== 'detail' && Array.isArray(v)) this.fields[k] = v.map(String);
    }
  }
}

function messageOf(status, body, retryAfter) {
  if (status === 0) return 'No se pudo contactar con el equipo Biogestor. Revisa la red e inténtalo de nuevo.';
  if (status === 429) {
    const s = Number(retryAfter);
    return s > 0 ? `Demasiados intentos. Espera ${s} s e inténtalo de nuevo.` : 'Demasiados intentos. Espera un momento.';
  }
  if (body && typeof body.detail === 'string') return body.detail;
  if (status === 404) return 'No encontrado.';
  if (status === 413) return 'Los datos enviados son demasiado grandes.';
  if (status >= 500) return `Error interno del equipo (${status}).`;
  return `Error ${status}.`;
}

/** The payload of a JWT (no signature check: only used to read `exp`). */
export function tokenPayload(token) {
  try {
    let b = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    while (b.length % 4) b += '=';
    return JSON.parse(atob(b));
  } catch {
    return null;
  }
}

/** The appliance's current time in ms (browser clock corrected by the last Date header). */
export function serverNow() {
  return Date.now() + skewMs;
}

function noteServerDate(resp) {
  // The header has whole seconds: only a clearly different clock is corrected.
  const d = Date.parse(resp.headers.get('Date') || '');
  if (Number.isNaN(d)) return;
  const skew = d + 500 - Date.now();
  skewMs = Math.abs(skew) < 2000 ? 0 : skew;
}

export function currentUser() {
  return session ? session.user : null;
}

export function accessToken() {
  return session ? session.access : null;
}

export function can(permission) {
  const u = currentUser();
  return !!u && Array.isArray(u.permisos) && u.permisos.includes(permission);
}

/** Called with the reason ('login', 'logout', 'expired', 'user') whenever the session changes. */
export function onSession(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(reason) {
  for (const fn of listeners) fn(reason);
}

function save() {
  try {
    if (session) sessionStorage.setItem(STORE_KEY, JSON.stringify(session));
    else sessionStorage.removeItem(STORE_KEY);
  } catch {
    // Private mode or storage disabled: the session lives in memory only.
  }
}

function expiresAt(token) {
  const p = tokenPayload(token);
  return p && typeof p.exp === 'number' ? p.exp * 1000 : 0;
}

function margin(token) {
  const p = tokenPayload(token);
  const life = p && typeof p.iat === 'number' && typeof p.exp === 'number' ? (p.exp - p.iat) * 1000 : Infinity;
  return Math.min(REFRESH_MARGIN_MS, life / 5);
}

function schedule() {
  clearTimeout(refreshTimer);
  if (!session) return;
  const wait = expiresAt(session.access) - margin(session.access) - serverNow();
  refreshTimer = setTimeout(() => refreshNow().catch(() => {}), Math.max(1_000, Math.min(wait, 2 ** 31 - 1)));
}

function setSession(s, reason) {
  session = s;
  save();
  schedule();
  emit(reason);
}

function endSession(reason) {
  if (!session) return;
  clearTimeout(refreshTimer);
  session = null;
  save();
  emit(reason);
}

/** Exchanges the refresh token for a new pair (the old refresh token stops working). */
export function refreshNow() {
  if (!session) return Promise.reject(new ApiError(401, { detail: 'Sin sesión.' }));
  if (refreshing) return refreshing;
  const old = session.refresh;
  refreshing = raw('POST', '/api/refrescar-token/', { refresh: old })
    .then((r) => {
      if (session && session.refresh === old) {
        session = { ...session, access: r.access, refresh: r.refresh };
        save();
        schedule();
      }
    })
    .catch((e) => {
      if (e.status === 401 || e.status === 400) endSession('expired');
      else if (session) {
        // Appliance unreachable: keep the session and try again soon.
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(() => refreshNow().catch(() => {}), 15_000);
      }
      throw e;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** Makes sure the access token is valid for at least the margin (after sleep, timers lag). */
export async function ensureFresh() {
  if (session && expiresAt(session.access) - serverNow() < margin(session.access) / 2) await refreshNow();
}

async function raw(method, path, body, token) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0);
  }
  noteServerDate(resp);
  const text = await resp.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (!resp.ok) throw new ApiError(resp.status, data, resp.headers.get('Retry-After'));
  return data;
}

/** An authenticated request; a 401 after one refresh attempt ends the session. */
export async function request(method, path, body) {
  if (!session) throw new ApiError(401, { detail: 'Inicia sesión para continuar.' });
  await ensureFresh();
  try {
    return await raw(method, path, body, session.access);
  } catch (e) {
    if (e.status !== 401 || !session) throw e;
    try {
      await refreshNow();
    } catch {
      endSession('expired');
      throw e;
    }
    try {
      return await raw(method, path, body, session.access);
    } catch (e2) {
      if (e2.status === 401) endSession('expired');
      throw e2;
    }
  }
}

export const get = (path) => request('GET', path);
export const post = (path, body = {}) => request('POST', path, body);
export const patch = (path, body) => request('PATCH', path, body);
export const put = (path, body) => request('PUT', path, body);

/** Requests that need no session (login, registration, health). */
export const open = {
  get: (path) => raw('GET', path),
  post: (path, body) => raw('POST', path, body),
};

export async function login(username, password) {
  const r = await raw('POST', '/api/iniciar-sesion/', { username, password });
  setSession({ access: r.access, refresh: r.refresh, user: r.user }, 'login');
  return r.user;
}

/** Takes over a new token pair for the same user (after changing one's own password, which ends every other session). */
export function adoptTokens(access, refresh) {
  if (!session) return;
  session = { ...session, access, refresh };
  save();
  schedule();
}

export async function logout() {
  const s = session;
  endSession('logout');
  if (s) {
    try {
      await raw('POST', '/api/cerrar-sesion/', { refresh: s.refresh }, s.access);
    } catch {
      // The tokens are forgotten here anyway; the server lets them expire.
    }
  }
}

/** Re-reads the user (permissions may have changed since login). */
export async function reloadUser() {
  const u = await get('/api/usuario/actual/');
  if (session) {
    session = { ...session, user: u };
    save();
    emit('user');
  }
  return u;
}

/** Restores a session kept in sessionStorage; false when there is none or it is no longer valid. */
export async function restore() {
  let s = null;
  try {
    s = JSON.parse(sessionStorage.getItem(STORE_KEY) || 'null');
  } catch {
    s = null;
  }
  if (!s || !s.access || !s.refresh) return false;
  session = s;
  try {
    await reloadUser();
    schedule();
    return !!session;
  } catch (e) {
    if (e.status === 0) {
      schedule();
      return true; // offline for now: keep the stored user and let pages show the error
    }
    endSession('expired');
    return false;
  }
}

/** Downloads an authenticated file and saves it under the server's file name. */
export async function download(path, fallbackName) {
  await ensureFresh();
  let resp;
  try {
    resp = await fetch(path, { headers: { Authorization: `Bearer ${accessToken()}` } });
  } catch {
    throw new ApiError(0);
  }
  if (!resp.ok) {
    let body = null;
    try {
      body = await resp.json();
    } catch {
      body = null;
    }
    if (resp.status === 401) endSession('expired');
    throw new ApiError(resp.status, body);
  }
  const blob = await resp.blob();
  const name = fileName(resp.headers.get('Content-Disposition')) || fallbackName;
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return name;
}

function fileName(disposition) {
  if (!disposition) return '';
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim());
    } catch {
      // fall through to the plain name
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1].trim() : '';
}
