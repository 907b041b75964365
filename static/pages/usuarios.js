// Usuarios: approve pending accounts (choosing their permissions) and edit the permissions of
// approved ones. The appliance refuses to remove AprobarUsuarios from its last holder.

import { currentUser, get, post, reloadUser } from '../api.js?v=__V__';
import { busy, html, toast } from '../dom.js?v=__V__';

const PERMS = {
  VerDashboard: 'Ver el panel, la producción, los llenados y las lecturas',
  VerReportes: 'Ver y descargar reportes',
  GenerarReportes: 'Generar y regenerar reportes',
  GestionarLlenados: 'Crear, editar y cerrar llenados',
  AprobarUsuarios: 'Aprobar usuarios y cambiar permisos (administrador)',
};
const DEFAULT_ON_APPROVAL = ['VerDashboard', 'VerReportes'];

function fullName(u) {
  return [u.first_name, u.last_name].filter(Boolean).join(' ');
}

function checkboxes(prefix, available, checked) {
  return html`${available.map((p) => html`<label class="choice"><input type="checkbox" name="permisos" value="${p}" id="${prefix}-${p}" ${checked.includes(p) ? 'checked' : ''}>
    <span><strong>${p}</strong> <small class="muted">${PERMS[p] || ''}</small></span></label>`)}`;
}

export function render(main) {
  main.innerHTML = html`<h1>Usuarios</h1>
    <section aria-labelledby="pend-h"><h2 id="pend-h">Pendientes de aprobación</h2><div id="pending"><p class="muted">Cargando…</p></div></section>
    <section aria-labelledby="appr-h"><h2 id="appr-h">Usuarios aprobados</h2><div id="approved"><p class="muted">Cargando…</p></div></section>`;
  const pendingEl = main.querySelector('#pending');
  const approvedEl = main.querySelector('#approved');
  let available = Object.keys(PERMS);
  let alive = true;

  async function load() {
    let pending;
    let approved;
    try {
      [pending, approved] = await Promise.all([get('/api/usuarios/pendientes/'), get('/api/usuarios/')]);
    } catch (e) {
      if (alive) pendingEl.innerHTML = html`<p class="card notice error" role="alert">${e.message}</p>`;
      return;
    }
    if (!alive) return;
    const pend = pending.usuarios || [];
    pendingEl.innerHTML = pend.length
      ? html`<ul class="cards">${pend.map((u) => html`<li class="card" data-user="${u.id}">
          <form class="form approve-form" data-id="${u.id}" data-name="${u.username}">
            <h3>${u.username}</h3>
            <p class="muted">${fullName(u)}${fullName(u) ? ' · ' : ''}${u.email}</p>
            <fieldset><legend>Permisos al aprobar</legend>${checkboxes(`ap${u.id}`, available, DEFAULT_ON_APPROVAL)}</fieldset>
            <p class="form-error" role="alert" tabindex="-1" hidden></p>
            <div class="actions"><button type="submit" class="btn btn-primary">Aprobar a ${u.username}</button></div>
          </form></li>`)}</ul>`
      : html`<p class="muted">No hay cuentas pendientes.</p>`;
    const appr = approved.usuarios || [];
    approvedEl.innerHTML = html`<div class="table-wrap"><table id="users-table">
      <thead><tr><th scope="col">Usuario</th><th scope="col">Nombre</th><th scope="col">Correo</th><th scope="col">Permisos</th><th scope="col"><span class="sr-only">Acciones</span></th></tr></thead>
      <tbody>${appr.map((u) => html`<tr data-user="${u.id}">
        <th scope="row">${u.username}</th><td>${fullName(u) || '—'}</td><td>${u.email}</td>
        <td class="perms">${(u.permisos || []).length ? u.permisos.map((p) => html`<span class="tag">${p}</span> `) : html`<span class="muted">ninguno</span>`}</td>
        <td><button type="button" class="btn btn-small btn-quiet" data-edit="${u.id}" aria-expanded="false">Editar permisos</button></td>
      </tr><tr class="editor-row" id="editor-${u.id}" hidden><td colspan="5"></td></tr>`)}</tbody></table></div>`;
  }

  main.addEventListener('submit', async (e) => {
    const form = e.target;
    if (!form.classList.contains('approve-form') && !form.classList.contains('perms-form')) return;
    e.preventDefault();
    const id = form.dataset.id;
    const permisos = [...form.querySelectorAll('input[name=permisos]:checked')].map((i) => i.value);
    const err = form.querySelector('.form-error');
    err.hidden = true;
    const btn = form.querySelector('[type=submit]');
    try {
      if (form.classList.contains('approve-form')) {
        await busy(btn, 'Aprobando…', () => post(`/api/usuario/${id}/aprobar/`, { permisos }));
        toast(`Usuario ${form.dataset.name} aprobado.`);
      } else {
        await busy(btn, 'Guardando…', () => post(`/api/usuarios/${id}/cambiar-permisos/`, { permisos }));
        toast(`Permisos de ${form.dataset.name} actualizados.`);
        const me = currentUser();
        if (me && String(me.id) === String(id)) await reloadUser();
      }
      await load();
    } catch (ex) {
      err.textContent = [ex.message, ...Object.values(ex.fields || {}).flat()].join(' ');
      err.hidden = false;
      err.focus?.();
    }
  });

  main.addEventListener('click', async (e) => {
    const btn = e.target.closest('button[data-edit]');
    if (!btn) return;
    const id = btn.dataset.edit;
    const row = main.querySelector(`#editor-${id}`);
    if (!row.hidden) {
      row.hidden = true;
      btn.setAttribute('aria-expanded', 'false');
      return;
    }
    let info;
    try {
      info = await busy(btn, 'Cargando…', () => get(`/api/usuarios/${id}/ver-permisos/`));
    } catch (ex) {
      toast(ex.message, 'error');
      return;
    }
    if (Array.isArray(info.disponibles) && info.disponibles.length) available = info.disponibles;
    row.firstElementChild.innerHTML = html`<form class="form perms-form" data-id="${id}" data-name="${info.username}">
      <fieldset><legend>Permisos de ${info.username}</legend>${checkboxes(`ed${id}`, available, info.permisos || [])}</fieldset>
      <p class="form-error" role="alert" tabindex="-1" hidden></p>
      <div class="actions"><button type="submit" class="btn btn-primary">Guardar permisos</button></div></form>`;
    row.hidden = false;
    btn.setAttribute('aria-expanded', 'true');
    row.querySelector('input').focus();
  });

  load();
  return () => {
    alive = false;
  };
}
