// Mi cuenta: who is logged in, with which permissions, and changing one's own password (the
// current one and a new one twice, with the registration rules). Changing it ends every other
// session of the account; this one continues with the new tokens the appliance returns.

import { adoptTokens, currentUser, post } from '../api.js?v=__V__';
import { busy, clearErrors, html, showErrors, toast } from '../dom.js?v=__V__';

const PASSWORD_HINT = 'Al menos 8 caracteres; no solo números, ni una contraseña común, ni parecida a tu usuario, nombre o correo.';

function field(id, name, label, autocomplete, hint = '') {
  return html`<div class="field">
    <label for="${id}">${label}</label>
    ${hint ? html`<p class="hint" id="${id}-hint">${hint}</p>` : ''}
    <input id="${id}" name="${name}" type="password" required autocomplete="${autocomplete}" ${hint ? html`aria-describedby="${id}-hint"` : ''}>
  </div>`;
}

export function render(main) {
  const u = currentUser() || {};
  const name = [u.first_name, u.last_name].filter(Boolean).join(' ');
  main.innerHTML = html`<h1>Mi cuenta</h1>
    <section class="card" aria-labelledby="me-h"><h2 id="me-h">${u.username}</h2>
      <dl class="kv"><div><dt>Nombre</dt><dd>${name || '—'}</dd></div><div><dt>Correo</dt><dd>${u.email || '—'}</dd></div>
      <div class="wide"><dt>Permisos</dt><dd>${(u.permisos || []).length ? u.permisos.map((p) => html`<span class="tag">${p}</span> `) : html`<span class="muted">ninguno</span>`}</dd></div></dl>
    </section>
    <section aria-labelledby="pw-h"><h2 id="pw-h">Cambiar la contraseña</h2>
      <form id="password-form" class="card form" novalidate>
        <p class="form-error" role="alert" tabindex="-1" hidden></p>
        ${field('pw-old_password', 'old_password', 'Contraseña actual', 'current-password')}
        ${field('pw-new_password', 'new_password', 'Contraseña nueva', 'new-password', PASSWORD_HINT)}
        ${field('pw-new_password2', 'new_password2', 'Repite la contraseña nueva', 'new-password')}
        <p class="hint">Al cambiarla se cierran tus sesiones en otros navegadores y dispositivos.</p>
        <div class="actions"><button class="btn btn-primary" type="submit">Cambiar contraseña</button></div>
      </form></section>`;
  const form = main.querySelector('#password-form');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = {
      old_password: form.elements.old_password.value,
      new_password: form.elements.new_password.value,
      new_password2: form.elements.new_password2.value,
    };
    try {
      const r = await busy(form.querySelector('button[type=submit]'), 'Cambiando…', () => post('/api/usuario/cambiar-clave/', body));
      adoptTokens(r.access, r.refresh);
      form.reset();
      toast(r.mensaje || 'Contraseña cambiada.');
    } catch (err) {
      showErrors(form, err);
    }
  });
  return null;
}
