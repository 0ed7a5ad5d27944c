// Formatting, the HTTP helpers (credentials, the UI header), small DOM helpers.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** A byte count for people. */
export function bytes(n) {
  if (!Number.isFinite(n) || n < 0) return '';
  let v = n, i = 0;
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${UNITS[i]}`;
}

/** A rate, empty when zero (quieter lists). */
export function rate(n) { return n > 0 ? `${bytes(n)}/s` : ''; }

/** Seconds as 1h 2m, 3m 4s, 5s; '∞' for Infinity. */
export function duration(s) {
  if (s === Infinity) return '∞';
  if (!Number.isFinite(s) || s < 0) return '';
  s = Math.round(s);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, x = s % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${x}s`;
  return `${x}s`;
}

/** Credentials for Basic auth, kept for this tab only. */
export const auth = {
  get() { return sessionStorage.getItem('shoal-auth'); },
  set(user, pass) { sessionStorage.setItem('shoal-auth', 'Basic ' + btoa(unescape(encodeURIComponent(`${user}:${pass}`)))); },
  clear() { sessionStorage.removeItem('shoal-auth'); },
};

/** Thrown by api() on a non-2xx answer. */
export class HttpError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

/** fetch with the UI header (no browser auth prompt), credentials, JSON. */
export async function api(path, opts = {}) {
  const headers = { 'x-shoal-ui': '1', ...(opts.headers || {}) };
  const a = auth.get();
  if (a) headers.Authorization = a;
  let body = opts.body;
  if (body !== undefined && typeof body !== 'string') {
    body = JSON.stringify(body);
    headers['Content-Type'] = 'application/json';
  }
  const r = await fetch(path, { method: opts.method || 'GET', headers, body, credentials: 'same-origin' });
  const text = await r.text();
  let v = null;
  try { v = text ? JSON.parse(text) : null; } catch { v = text; }
  if (!r.ok) {
    if (r.status === 401) window.dispatchEvent(new Event('shoal-unauthorized'));
    throw new HttpError(r.status, (v && v.error) || `${r.status} ${r.statusText}`);
  }
  return v;
}

let rpcSession = '';
/** A Transmission RPC call (the session id handshake included). */
export async function rpc(method, args = {}) {
  for (let i = 0; i < 2; i++) {
    const headers = { 'x-shoal-ui': '1', 'Content-Type': 'application/json', 'X-Transmission-Session-Id': rpcSession };
    const a = auth.get();
    if (a) headers.Authorization = a;
    const r = await fetch('/transmission/rpc', { method: 'POST', headers, body: JSON.stringify({ method, arguments: args }) });
    if (r.status === 409) { rpcSession = r.headers.get('X-Transmission-Session-Id') || ''; continue; }
    const v = await r.json().catch(() => ({}));
    if (!r.ok || v.result !== 'success') throw new HttpError(r.status, v.result || `${r.status}`);
    return v.arguments;
  }
  throw new HttpError(409, 'no RPC session id');
}

/** document.createElement with properties and children. */
export function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('aria-') || k.startsWith('data-') || k === 'role' || k === 'for') e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of kids) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/** File contents as base64. */
export function fileBase64(f) {
  return new Promise((ok, bad) => {
    const r = new FileReader();
    r.onload = () => ok(String(r.result).replace(/^data:[^,]*,/, ''));
    r.onerror = () => bad(r.error);
    r.readAsDataURL(f);
  });
}
