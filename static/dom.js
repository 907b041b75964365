// Small DOM helpers: an escaping template tag, form field errors, confirmation dialogs, toasts.

const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESC[c]);
}

class Safe {
  constructor(s) {
    this.s = s;
  }
  toString() {
    return this.s;
  }
}

function piece(v) {
  if (v instanceof Safe) return v.s;
  if (Array.isArray(v)) return v.map(piece).join('');
  if (v === null || v === undefined || v === false) return '';
  return esc(v);
}

/** Template tag: interpolations are escaped unless they were produced by `html` themselves. */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => {
    out += piece(v) + strings[i + 1];
  });
  return new Safe(out);
}

function $(sel, root = document) {
  return root.querySelector(sel);
}

function $$(sel, root = document) {
  return [...root.querySelectorAll(sel)];
}

let toastTimer = 0;
/** A short message announced to screen readers. */
export function toast(message, kind = 'ok') {
  const t = document.getElementById('toast');
  if (!t) return;
  t.textContent = message;
  t.className = `toast show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    t.className = 'toast';
  }, 5000);
}

/** Clears the messages a form shows. */
export function clearErrors(form) {
  for (const el of $$('.field-error', form)) el.remove();
  for (const el of $$('[aria-invalid]', form)) el.removeAttribute('aria-invalid');
  const box = $('.form-error', form);
  if (box) {
    box.textContent = '';
    box.hidden = true;
  }
}

/**
 * Shows an API error on a form: one message list under each field the API named, the `detail`
 * (and messages for fields the form does not have) at the top. Focuses the first bad field.
 */
export function showErrors(form, err) {
  clearErrors(form);
  let first = null;
  const orphan = [];
  for (const [name, messages] of Object.entries(err.fields || {})) {
    const input = form.elements.namedItem(name);
    const el = input && (input instanceof RadioNodeList ? input[0] : input);
    if (!el || !el.id) {
      orphan.push(...messages);
      continue;
    }
    const id = `${el.id}-error`;
    const p = document.createElement('p');
    p.className = 'field-error';
    p.id = id;
    p.textContent = messages.join(' ');
    const wrap = el.closest('.field') || el.parentElement;
    wrap.append(p);
    el.setAttribute('aria-invalid', 'true');
    const described = (el.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && x !== id);
    el.setAttribute('aria-describedby', [...described, id].join(' '));
    first = first || el;
  }
  const box = $('.form-error', form);
  if (box) {
    box.textContent = [err.message, ...orphan].join(' ');
    box.hidden = false;
  }
  (first || box)?.focus?.();
}

/** Values of a form as an object of trimmed strings. */
export function formValues(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) out[k] = typeof v === 'string' ? v.trim() : v;
  return out;
}

/** A modal confirmation; resolves true when the user confirms. */
export function confirmDialog({ title, body, confirm = 'Confirmar', cancel = 'Cancelar', danger = false }) {
  return new Promise((resolve) => {
    const d = document.createElement('dialog');
    d.className = 'dialog';
    d.setAttribute('aria-labelledby', 'dlg-title');
    d.innerHTML = html`<form method="dialog">
      <h2 id="dlg-title">${title}</h2>
      <div class="dialog-body">${body}</div>
      <div class="actions">
        <button value="cancel" class="btn btn-quiet" autofocus>${cancel}</button>
        <button value="ok" class="btn ${danger ? 'btn-danger' : 'btn-primary'}">${confirm}</button>
      </div></form>`.s;
    document.body.append(d);
    d.addEventListener('close', () => {
      resolve(d.returnValue === 'ok');
      d.remove();
    });
    d.showModal();
  });
}

/** Disables a button while `work` runs and shows `busyText` in it. */
export async function busy(button, busyText, work) {
  const text = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  if (busyText) button.textContent = busyText;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = text;
  }
}
