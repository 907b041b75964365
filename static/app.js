// The application shell: hash routes (#/panel), navigation limited to what the user's
// permissions allow, the session's life cycle and the page modules' clean-up.

import { can, currentUser, logout, onSession, restore } from './api.js?v=__V__';
import { html, toast } from './dom.js?v=__V__';
import { refreshBanner } from './alarms.js?v=__V__';

const V = '__V__';
const page = (name) => () => import(`./pages/${name}.js?v=${V}`);

/** Pages that need a session, in navigation order. */
const ROUTES = [
  { path: 'panel', title: 'Panel', allow: () => can('VerDashboard'), load: page('panel') },
  { path: 'produccion', title: 'Producción', allow: () => can('VerDashboard'), load: page('produccion') },
  { path: 'llenados', title: 'Llenados', allow: () => can('VerDashboard'), load: page('llenados') },
  { path: 'alarmas', title: 'Alarmas', allow: () => can('VerDashboard'), load: page('alarmas') },
  { path: 'sensores', title: 'Sensores', allow: () => can('VerDashboard'), load: page('sensores') },
  { path: 'reportes', title: 'Reportes', allow: () => can('VerReportes') || can('GenerarReportes'), load: page('reportes') },
  { path: 'usuarios', title: 'Usuarios', allow: () => can('AprobarUsuarios'), load: page('usuarios') },
  { path: 'estado', title: 'Estado', allow: () => true, load: page('estado') },
  // reached from the user's name in the header (and the menu on phones), not the navigation
  { path: 'cuenta', title: 'Mi cuenta', allow: () => true, load: page('cuenta'), hidden: true },
];

/** Pages for visitors without a session. */
const PUBLIC = {
  acceso: { title: 'Iniciar sesión', view: 'login' },
  registro: { title: 'Crear cuenta', view: 'register' },
  configuracion: { title: 'Configuración inicial', view: 'setup' },
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const menuBtn = document.getElementById('menu-btn');
const who = document.getElementById('who');
let cleanup = null;
let seq = 0;
let firstRender = true;
let loginNotice = '';

function landing() {
  const r = ROUTES.find((x) => x.allow() && !x.hidden);
  return r ? r.path : 'estado';
}

function go(path) {
  const target = `#/${path}`;
  if (location.hash === target) route();
  else location.hash = target;
}

function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const [path, query = ''] = h.split('?');
  return { path: path.replace(/\/+$/, ''), params: new URLSearchParams(query) };
}

function renderNav(current) {
  const user = currentUser();
  document.body.classList.toggle('authed', !!user);
  nav.hidden = !user;
  who.hidden = !user;
  menuBtn.hidden = !user;
  if (!user) {
    nav.innerHTML = '';
    return;
  }
  document.getElementById('who-name').textContent = user.username;
  nav.innerHTML = html`<ul>${ROUTES.filter((r) => r.allow() && !r.hidden).map(
    (r) => html`<li><a href="#/${r.path}" ${r.path === current ? html`aria-current="page"` : ''}>${r.title}</a></li>`,
  )}<li class="nav-logout"><button type="button" data-account>Mi cuenta</button></li>
    <li class="nav-logout"><button type="button" data-logout>Cerrar sesión (${user.username})</button></li></ul>`;
}

function setMenu(open) {
  nav.classList.toggle('open', open);
  menuBtn.setAttribute('aria-expanded', String(open));
}

/** A fresh element for each page, so listeners a page puts on it leave with it. */
function pageRoot() {
  const root = document.createElement('div');
  root.className = 'page';
  main.replaceChildren(root);
  return root;
}

async function route() {
  const my = ++seq;
  const { path, params } = parseHash();
  const user = currentUser();
  setMenu(false);
  if (!user && !PUBLIC[path]) return go('acceso');
  if (user && (PUBLIC[path] || path === '')) return go(landing());
  if (typeof cleanup === 'function') {
    try {
      cleanup();
    } catch {
      // a page's clean-up failing must not block navigation
    }
  }
  cleanup = null;
  renderNav(path);
  let title;
  if (!user) {
    title = PUBLIC[path].title;
    const mod = await import(`./pages/acceso.js?v=${V}`);
    if (my !== seq) return;
    const view = PUBLIC[path].view;
    if (view !== 'login') loginNotice = '';
    cleanup = mod.render(pageRoot(), { view, notice: loginNotice, params });
  } else {
    const r = ROUTES.find((x) => x.path === path);
    if (!r) return go(landing());
    title = r.title;
    if (!r.allow()) {
      main.innerHTML = html`<h1>${r.title}</h1>
        <div class="card notice warn" role="alert"><p>Tu cuenta no tiene permiso para ver esta sección.
        Pide a un administrador que te lo conceda.</p><p><a href="#/${landing()}">Volver al inicio</a></p></div>`;
    } else {
      main.innerHTML = html`<p class="muted">Cargando…</p>`;
      let mod;
      try {
        mod = await r.load();
      } catch {
        main.innerHTML = html`<div class="card notice error" role="alert">No se pudo cargar la página. Recarga el navegador.</div>`;
        return;
      }
      if (my !== seq) return;
      cleanup = mod.render(pageRoot(), { params, go }) || null;
    }
  }
  document.title = `${title} · Biogestor`;
  refreshBanner();
  if (!firstRender) main.focus({ preventScroll: false });
  firstRender = false;
}

onSession((reason) => {
  if (reason === 'expired') {
    loginNotice = 'Tu sesión terminó. Inicia sesión de nuevo.';
    go('acceso');
  } else if (reason === 'logout') {
    go('acceso');
  } else if (reason === 'login') {
    loginNotice = '';
    go(landing());
  } else if (reason === 'user') {
    renderNav(parseHash().path);
  }
});

menuBtn.addEventListener('click', () => setMenu(!nav.classList.contains('open')));
nav.addEventListener('click', async (e) => {
  if (e.target.closest('a')) setMenu(false);
  if (e.target.closest('[data-account]')) go('cuenta');
  if (e.target.closest('[data-logout]')) {
    await logout();
    toast('Sesión cerrada.');
  }
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && nav.classList.contains('open')) {
    setMenu(false);
    menuBtn.focus();
  }
});
document.getElementById('logout').addEventListener('click', async () => {
  await logout();
  toast('Sesión cerrada.');
});
window.addEventListener('hashchange', route);

restore().then(() => route());
