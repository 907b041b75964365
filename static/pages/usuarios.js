// Usuarios: approve or reject pending accounts (choosing their permissions), edit the
// permissions of approved ones, reset a forgotten password, disable, enable or delete an
// account, and see the login lockouts. The appliance refuses to leave nobody able to approve
// users (AprobarUsuarios) and an administrator disabling or deleting their own account.

import { currentUser, get, post, reloadUser } from '../api.js?v=__V__';
import { busy, confirmDialog, html, toast } from '../dom.js?v=__V__';
import { dateTimeShort } from '../fmt.js?v=__V__';

const PERMS = {
  VerDashboard: 'Ver el panel, la producción, los llenados y las lecturas',
  VerReportes: 'Ver y descargar reportes',
  GenerarReportes: 'Generar y regenerar reportes',
  GestionarLlenados: 'Crear, editar y cerrar llenados',
  GestionarAlarmas: 'Reconocer alarmas y cambiar sus umbrales',
  AprobarUsuarios: 'Aprobar usuarios y cambiar permisos (administrador)',
};
const SCOPES = {
  usuario_direccion: 'este usuario desde esta dirección',
  direccion: 'cualquier usuario desde esta dirección',
  usuario: 'este usuario desde direcciones donde no entró antes',
};

function fullName(u) {
  return [u.first_name, u.last_name].filter(Boolean).join(' ');
}

function checkboxes(prefix, available, checked) {
  return html`${available.map((p) => html`<label class="choice"><input type="checkbox" name="permisos" value="${p}" id="${prefix}-${p}" ${checked.includes(p) ? 'checked' : ''}>
    <span><strong>${p}</strong> <small class="muted">${PERMS[p] || ''}</small></span></label>`)}`;
}

function stateTag(u) {
  return u.activo === false ? html`<span class="tag bad">Deshabilitada</span>` : html`<span class="tag ok">Activa</span>`;
}

function accountPanel(u, self) {
  const disabled = u.activo === false;
  return html`<div class="account-panel" data-id="${u.id}" data-name="${u.username}">
    <p class="muted">${self ? 'Es tu cuenta: otro administrador puede deshabilitarla o eliminarla.' : `Cuenta ${disabled ? 'deshabilitada: no puede iniciar sesión' : 'activa'}.`}</p>
    <div class="actions">
      <button type="button" class="btn btn-small btn-quiet" data-act="reset">Restablecer contraseña</button>
      ${self ? '' : disabled
        ? html`<button type="button" class="btn btn-small btn-quiet" data-act="enable">Habilitar</button>`
        : html`<button type="button" class="btn btn-small btn-quiet" data-act="disable">Deshabilitar</button>`}
      ${self ? '' : html`<button type="button" class="btn btn-small btn-danger" data-act="delete">Eliminar cuenta</button>`}
    </div>
    <div class="reset-result" role="status"></div></div>`;
}

function lockoutRows(list) {
  if (!list.length) return html`<p class="muted">No hay bloqueos de inicio de sesión en la última hora.</p>`;
  return html`<div class="table-wrap"><table id="lockouts-table">
    <thead><tr><th scope="col">Usuario</th><th scope="col">Dirección</th><th scope="col">Afecta a</th><th scope="col" class="n">Fallos</th><th scope="col">Hasta</th></tr></thead>
    <tbody>${list.map((b) => html`<tr>
      <td>${b.usuario || html`<span class="muted">cualquiera</span>`}</td><td>${b.direccion || html`<span class="muted">varias</span>`}</td>
      <td>${SCOPES[b.ambito] || b.ambito}</td><td class="n">${b.fallos}</td>
      <td class="when">${b.activo ? html`<span class="tag warn">bloqueado</span> ${dateTimeShort(b.hasta)}` : html`<span class="muted">terminó ${dateTimeShort(b.hasta)}</span>`}</td>
    </tr>`)}</tbody></table></div>`;
}

export function render(main) {
  main.innerHTML = html`<h1>Usuarios</h1>
    <section aria-labelledby="pend-h"><h2 id="pend-h">Pendientes de aprobación</h2><div id="pending"><p class="muted">Cargando…</p></div></section>
    <section aria-labelledby="appr-h"><h2 id="appr-h">Usuarios aprobados</h2><div id="approved"><p class="muted">Cargando…</p></div></section>
    <section aria-labelledby="lock-h"><h2 id="lock-h">Bloqueos de inicio de sesión</h2>
      <p class="hint">Tras varias contraseñas erróneas el equipo hace esperar cada vez más a quien las escribe. Donde una cuenta ya entró antes no le afectan los fallos de otros lugares.</p>
      <div id="lockouts"><p class="muted">Cargando…</p></div></section>`;
  const pendingEl = main.querySelector('#pending');
  const approvedEl = main.querySelector('#approved');
  const lockoutsEl = main.querySelector('#lockouts');
  let available = Object.keys(PERMS);
  let alive = true;

  async function loadLockouts() {
    try {
      const r = await get('/api/usuarios/bloqueos/');
      if (alive) lockoutsEl.innerHTML = lockoutRows(r.bloqueos || []);
    } catch (e) {
      if (alive) lockoutsEl.innerHTML = html`<p class="card notice error" role="alert">${e.message}</p>`;
    }
  }

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
    const me = currentUser();
    const pend = pending.usuarios || [];
    const onApproval = pending.permisos_al_aprobar || [];
    pendingEl.innerHTML = pend.length
      ? html`<ul class="cards">${pend.map((u) => html`<li class="card" data-user="${u.id}">
          <form class="form approve-form" data-id="${u.id}" data-name="${u.username}">
            <h3>${u.username}</h3>
            <p class="muted">${fullName(u)}${fullName(u) ? ' · ' : ''}${u.email}</p>
            <fieldset><legend>Permisos al aprobar</legend>${checkboxes(`ap${u.id}`, available, onApproval)}</fieldset>
            <p class="form-error" role="alert" tabindex="-1" hidden></p>
            <div class="actions"><button type="submit" class="btn btn-primary">Aprobar a ${u.username}</button>
              <button type="button" class="btn btn-quiet" data-reject="${u.id}" data-name="${u.username}">Rechazar</button></div>
          </form></li>`)}</ul>`
      : html`<p class="muted">No hay cuentas pendientes.</p>`;
    const appr = approved.usuarios || [];
    approvedEl.innerHTML = html`<div class="table-wrap"><table id="users-table">
      <thead><tr><th scope="col">Usuario</th><th scope="col">Nombre</th><th scope="col">Correo</th><th scope="col">Estado</th><th scope="col">Permisos</th><th scope="col"><span class="sr-only">Acciones</span></th></tr></thead>
      <tbody>${appr.map((u) => html`<tr data-user="${u.id}">
        <th scope="row">${u.username}</th><td>${fullName(u) || '—'}</td><td>${u.email}</td><td class="state">${stateTag(u)}</td>
        <td class="perms">${(u.permisos || []).length ? u.permisos.map((p) => html`<span class="tag">${p}</span> `) : html`<span class="muted">ninguno</span>`}</td>
        <td><div class="row-actions"><button type="button" class="btn btn-small btn-quiet" data-edit="${u.id}" aria-expanded="false">Editar permisos</button>
          <button type="button" class="btn btn-small btn-quiet" data-account="${u.id}" aria-expanded="false" aria-controls="account-${u.id}">Cuenta</button></div></td>
      </tr><tr class="editor-row" id="editor-${u.id}" hidden><td colspan="6"></td></tr>
      <tr class="editor-row" id="account-${u.id}" hidden><td colspan="6">${accountPanel(u, me && String(me.id) === String(u.id))}</td></tr>`)}</tbody></table></div>`;
  }

  async function accountAction(btn) {
    const panel = btn.closest('.account-panel');
    const { id, name } = panel.dataset;
    const act = btn.dataset.act;
    const ask = {
      reset: { title: `Restablecer la contraseña de ${name}`, body: 'Se generará una contraseña nueva y se cerrarán todas sus sesiones. Tendrás que entregársela: solo se muestra una vez.', confirm: 'Restablecer' },
      disable: { title: `Deshabilitar la cuenta de ${name}`, body: 'No podrá iniciar sesión y sus sesiones abiertas se cerrarán. Puedes habilitarla de nuevo cuando quieras.', confirm: 'Deshabilitar', danger: true },
      enable: null,
      delete: { title: `Eliminar la cuenta de ${name}`, body: 'La cuenta se borra definitivamente y sus sesiones se cierran. Los reportes que generó conservan su nombre.', confirm: 'Eliminar cuenta', danger: true },
    }[act];
    if (ask && !(await confirmDialog(ask))) return;
    const path = { reset: 'restablecer-clave', disable: 'deshabilitar', enable: 'habilitar', delete: 'eliminar' }[act];
    try {
      const r = await busy(btn, 'Un momento…', () => post(`/api/usuario/${id}/${path}/`));
      if (act === 'reset') {
        const out = panel.querySelector('.reset-result');
        out.innerHTML = html`<p class="card notice ok">Nueva contraseña de <strong>${name}</strong>: <code class="new-password">${r.password}</code>.
          Entrégasela en persona; no se volverá a mostrar. Podrá cambiarla en «Mi cuenta».</p>`;
        out.focus?.();
        toast(`Contraseña de ${name} restablecida.`);
        return;
      }
      toast(r.mensaje || 'Hecho.');
      await load();
    } catch (ex) {
      toast(ex.message, 'error');
    }
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
    const reject = e.target.closest('button[data-reject]');
    if (reject) {
      const { name } = reject.dataset;
      const ok = await confirmDialog({
        title: `Rechazar el registro de ${name}`,
        body: 'La solicitud se borra. La persona podrá registrarse de nuevo si hace falta.',
        confirm: 'Rechazar',
        danger: true,
      });
      if (!ok) return;
      try {
        await busy(reject, 'Rechazando…', () => post(`/api/usuario/${reject.dataset.reject}/rechazar/`));
        toast(`Registro de ${name} rechazado.`);
        await load();
      } catch (ex) {
        toast(ex.message, 'error');
      }
      return;
    }
    const act = e.target.closest('.account-panel button[data-act]');
    if (act) {
      await accountAction(act);
      return;
    }
    const acc = e.target.closest('button[data-account]');
    if (acc) {
      const row = main.querySelector(`#account-${acc.dataset.account}`);
      row.hidden = !row.hidden;
      acc.setAttribute('aria-expanded', String(!row.hidden));
      if (!row.hidden) row.querySelector('button')?.focus();
      return;
    }
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
  loadLockouts();
  const timer = setInterval(() => {
    if (alive) loadLockouts();
  }, 30_000);
  return () => {
    alive = false;
    clearInterval(timer);
  };
}
