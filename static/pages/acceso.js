// Acceso: log in, create an account (pending approval), and the first-run setup that creates
// the administrator with the one-time code the appliance prints when it has no accounts.

import { login, open } from '../api.js?v=__V__';
import { busy, clearErrors, formValues, html, showErrors } from '../dom.js?v=__V__';

const PASSWORD_HINT = 'Al menos 8 caracteres; no solo números, ni una contraseña común, ni parecida a tu usuario, nombre o correo.';

function field(id, label, attrs, hint = '') {
  return html`<div class="field">
    <label for="${id}">${label}</label>
    ${hint ? html`<p class="hint" id="${id}-hint">${hint}</p>` : ''}
    <input id="${id}" name="${id.replace(/^[a-z]+-/, '')}" ${attrs} ${hint ? html`aria-describedby="${id}-hint"` : ''}>
  </div>`;
}

function loginView(notice) {
  return html`<section class="auth">
    <h1>Iniciar sesión</h1>
    ${notice ? html`<p class="card notice warn" role="status">${notice}</p>` : ''}
    <form id="login-form" class="card form" novalidate>
      <p class="form-error" role="alert" tabindex="-1" hidden></p>
      ${field('login-username', 'Usuario', html`autocomplete="username" required autocapitalize="none" spellcheck="false"`)}
      ${field('login-password', 'Contraseña', html`type="password" autocomplete="current-password" required`)}
      <div class="actions"><button class="btn btn-primary" type="submit">Entrar</button></div>
    </form>
    <div class="card links">
      <p>¿No tienes cuenta? <a href="#/registro">Crear una cuenta</a>. Un administrador debe aprobarla antes de que puedas entrar.</p>
      <p>¿Equipo recién instalado? <a href="#/configuracion">Crear el administrador con el código de configuración</a>.</p>
    </div>
  </section>`;
}

function registerView(setup) {
  return html`<section class="auth">
    <h1>${setup ? 'Configuración inicial' : 'Crear cuenta'}</h1>
    ${setup
      ? html`<div class="card notice"><p>La primera cuenta que se crea con el <strong>código de configuración</strong> es la del administrador,
        que queda aprobada con todos los permisos. El código aparece en el registro del servicio al arrancar sin cuentas
        (<code>journalctl -u biogestor</code>) y en el archivo <code>setup-code</code> de la carpeta de datos. Solo sirve una vez.</p></div>`
      : html`<p class="muted">Tu cuenta quedará <strong>pendiente de aprobación</strong>: un administrador debe aprobarla y darte permisos antes de que puedas entrar.</p>`}
    <form id="register-form" class="card form" novalidate>
      <p class="form-error" role="alert" tabindex="-1" hidden></p>
      ${setup ? field('reg-setup_code', 'Código de configuración', html`required autocomplete="off" autocapitalize="characters" spellcheck="false"`, 'Formato XXXX-XXXX-XXXX.') : ''}
      ${field('reg-username', 'Usuario', html`required autocomplete="username" autocapitalize="none" spellcheck="false"`, 'Letras, dígitos y @ . + - _ (sin espacios).')}
      ${field('reg-email', 'Correo electrónico', html`type="email" required autocomplete="email"`)}
      <div class="row2">
        ${field('reg-first_name', 'Nombre (opcional)', html`autocomplete="given-name"`)}
        ${field('reg-last_name', 'Apellidos (opcional)', html`autocomplete="family-name"`)}
      </div>
      ${field('reg-password', 'Contraseña', html`type="password" required autocomplete="new-password"`, PASSWORD_HINT)}
      ${field('reg-password2', 'Repite la contraseña', html`type="password" required autocomplete="new-password"`)}
      <div class="actions"><button class="btn btn-primary" type="submit">${setup ? 'Crear administrador' : 'Crear cuenta'}</button></div>
    </form>
    <p><a href="#/acceso">Volver a iniciar sesión</a></p>
  </section>`;
}

export function render(main, { view, notice }) {
  if (view === 'login') {
    main.innerHTML = loginView(notice);
    const form = main.querySelector('#login-form');
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const v = formValues(form);
      if (!v.username || !v.password) {
        showErrors(form, {
          message: 'Escribe tu usuario y tu contraseña.',
          fields: { ...(v.username ? {} : { username: ['Este campo es requerido.'] }), ...(v.password ? {} : { password: ['Este campo es requerido.'] }) },
        });
        return;
      }
      try {
        await busy(form.querySelector('button[type=submit]'), 'Entrando…', () => login(v.username, form.elements.password.value));
      } catch (err) {
        showErrors(form, err);
      }
    });
    form.elements.username.focus();
    return null;
  }

  const setup = view === 'setup';
  main.innerHTML = registerView(setup);
  const form = main.querySelector('#register-form');
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const v = formValues(form);
    const body = {
      username: v.username,
      email: v.email,
      password: form.elements.password.value,
      password2: form.elements.password2.value,
      first_name: v.first_name,
      last_name: v.last_name,
    };
    if (setup) body.setup_code = v.setup_code.toUpperCase();
    if (!setup && body.password !== body.password2) {
      showErrors(form, { message: 'Revisa los datos del formulario.', fields: { password2: ['Las contraseñas no coinciden.'] } });
      return;
    }
    try {
      const r = await busy(form.querySelector('button[type=submit]'), 'Enviando…', () => open.post('/api/crear-usuario/', body));
      const approved = r.usuario && r.usuario.perfil && r.usuario.perfil.aprobado;
      main.innerHTML = html`<section class="auth"><h1>${setup ? 'Administrador creado' : 'Cuenta creada'}</h1>
        <div class="card notice ok" role="status" id="register-done"><p>${r.mensaje}</p>
        ${approved ? '' : html`<p>Recibirás acceso cuando un administrador apruebe la cuenta <strong>${body.username}</strong>.</p>`}</div>
        <p><a href="#/acceso">Ir a iniciar sesión</a></p></section>`;
      main.querySelector('#register-done').focus?.();
      if (approved) await login(body.username, body.password).catch(() => {});
    } catch (err) {
      showErrors(form, err);
    }
  });
  form.querySelector('input').focus();
  return null;
}
