// shoal web UI: the torrent list (virtualised: only the rows in view are in
// the DOM), selection and actions, the add dialog, the session dialog, the
// login form, live updates from /api/v1/events with a periodic full refresh.
import { api, auth, bytes, duration, el, fileBase64, HttpError, rate, rpc } from './util.js';
import { Details } from './details.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// Seconds between full refreshes (the fallback for missed events); 0: never.
const REFRESH = Number(params.get('refresh') ?? 30);

/** id → torrent summary (the REST list's objects). */
const torrents = new Map();
/** Speed samples per id: [[t, down, up], …] of the last 5 minutes. */
const history = new Map();
const HISTORY_MS = 5 * 60 * 1000;

const ui = {
  view: [],            // ids in display order (filtered, sorted)
  selected: new Set(), // ids
  cursor: null,        // id with the keyboard focus
  anchor: null,        // id where a shift-selection starts
  sort: { key: 'name', dir: 1 },
  stats: { events: 0, refreshes: 0, connected: false },
  frozen: false,       // the test hook feeds data: no server refreshes
};

const ROW = 30; // px, the --row of style.css
const pool = [];      // row elements, reused
const list = $('list');
const spacer = $('spacer');
const details = new Details($('details'), {
  torrent: (id) => torrents.get(id),
  history: (id) => history.get(id) || [],
  toast,
});

// ---------- derived values ----------

function eta(t) {
  if (t.state !== 'downloading') return -1;
  const left = (t.wanted_bytes || 0) - (t.verified_bytes || 0);
  if (left <= 0) return -1;
  return t.download_rate > 0 ? left / t.download_rate : Infinity;
}
function ratio(t) {
  const base = Math.max(t.downloaded || 0, t.verified_bytes || 0);
  return base > 0 ? (t.uploaded || 0) / base : 0;
}
const SORTS = {
  name: (t) => (t.name || '').toLowerCase(),
  size: (t) => t.wanted_bytes || 0,
  progress: (t) => t.progress || 0,
  state: (t) => t.state || '',
  down: (t) => t.download_rate || 0,
  up: (t) => t.upload_rate || 0,
  eta: (t) => { const e = eta(t); return e < 0 ? -1 : e; },
  ratio,
  peers: (t) => t.peers || 0,
  labels: (t) => (t.labels || []).join(','),
};

// ---------- the list ----------

function computeView() {
  const q = $('search').value.trim().toLowerCase();
  const st = $('filter-state').value;
  const lb = $('filter-label').value;
  const key = SORTS[ui.sort.key];
  const dir = ui.sort.dir;
  const rows = [];
  for (const t of torrents.values()) {
    if (q && !(t.name || '').toLowerCase().includes(q)) continue;
    if (st && t.state !== st) continue;
    if (lb && !(t.labels || []).includes(lb)) continue;
    rows.push(t);
  }
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : a.id - b.id) * dir;
  });
  ui.view = rows.map((t) => t.id);
  $('empty').hidden = torrents.size > 0;
  spacer.style.height = `${ui.view.length * ROW}px`;
}

function makeRow() {
  const r = el('div', { class: 'row', role: 'option' });
  const c = (cls) => { const s = el('span', { class: cls }); r.append(s); return s; };
  r._name = c('c-name');
  r._size = c('num');
  const p = c('prog');
  r._fill = el('div', { class: 'fill' });
  r._pct = el('span', { class: 'pct' });
  p.append(el('div', { class: 'track', 'aria-hidden': 'true' }, r._fill), r._pct);
  r._state = c('c-state');
  r._down = c('num');
  r._up = c('num');
  r._eta = c('num');
  r._ratio = c('num');
  r._peers = c('num');
  r._labels = c('c-labels');
  r.addEventListener('mousedown', (e) => onRowClick(e, r._id));
  r.addEventListener('dblclick', () => openDetails(r._id));
  return r;
}

function fillRow(r, t, index) {
  r._id = t.id;
  r.id = `row-${t.id}`;
  r.dataset.id = t.id;
  r.style.transform = `translateY(${index * ROW}px)`;
  r.setAttribute('aria-selected', ui.selected.has(t.id) ? 'true' : 'false');
  r.setAttribute('aria-posinset', index + 1);
  r.setAttribute('aria-setsize', ui.view.length);
  r.classList.toggle('cursor', ui.cursor === t.id);
  const pct = Math.floor((t.progress || 0) * 1000) / 10;
  r._name.textContent = t.name || t.info_hash;
  r._name.title = t.name || '';
  r._size.textContent = t.wanted_bytes ? bytes(t.wanted_bytes) : '';
  r._fill.style.width = `${pct}%`;
  r._fill.classList.toggle('done', pct >= 100);
  r._pct.textContent = `${pct.toFixed(1)}%`;
  r._state.textContent = t.error ? `error` : t.state;
  r._state.className = t.error || t.state === 'error' ? 'c-state st-error' : 'c-state';
  r._state.title = t.error || '';
  // A seeding torrent downloads nothing: no stale rate from its last event.
  r._down.textContent = t.state === 'seeding' ? '' : rate(t.download_rate);
  r._up.textContent = rate(t.upload_rate);
  const e = eta(t);
  r._eta.textContent = e < 0 ? '' : duration(e);
  r._ratio.textContent = ratio(t).toFixed(2);
  r._peers.textContent = t.peers ? String(t.peers) : '';
  r._labels.textContent = (t.labels || []).join(', ');
}

let frame = 0;
/** Redraws the rows in view on the next animation frame. */
function render(recompute = true) {
  if (recompute) computeView.pending = true;
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    if (computeView.pending) { computeView.pending = false; computeView(); }
    draw();
    updateButtons();
  });
}

function draw() {
  const top = list.scrollTop;
  const h = list.clientHeight || 600;
  const first = Math.max(0, Math.floor(top / ROW) - 5);
  const last = Math.min(ui.view.length, Math.ceil((top + h) / ROW) + 5);
  const need = last - first;
  while (pool.length < need) { const r = makeRow(); pool.push(r); list.append(r); }
  for (let i = 0; i < pool.length; i++) {
    const r = pool[i];
    if (i < need) {
      const t = torrents.get(ui.view[first + i]);
      r.hidden = false;
      fillRow(r, t, first + i);
    } else if (!r.hidden) {
      r.hidden = true;
      r._id = null;
      r.removeAttribute('id');
    }
  }
  // Drop rows far beyond need (a window made smaller).
  while (pool.length > need + 20) pool.pop().remove();
  if (ui.cursor != null && ui.view.includes(ui.cursor)) list.setAttribute('aria-activedescendant', `row-${ui.cursor}`);
  else list.removeAttribute('aria-activedescendant');
  for (const b of document.querySelectorAll('.list-head .col')) {
    if (b.dataset.sort === ui.sort.key) b.setAttribute('aria-sort', ui.sort.dir > 0 ? 'ascending' : 'descending');
    else b.removeAttribute('aria-sort');
  }
  details.refreshSummary();
}

function updateButtons() {
  const sel = [...ui.selected].map((id) => torrents.get(id)).filter(Boolean);
  $('btn-pause').disabled = !sel.some((t) => t.state !== 'paused');
  $('btn-resume').disabled = !sel.some((t) => t.state === 'paused' || t.state === 'stopped' || t.state === 'error');
  $('btn-remove').disabled = sel.length === 0;
  const labels = new Set();
  for (const t of torrents.values()) for (const l of t.labels || []) labels.add(l);
  const sl = $('filter-label');
  const have = [...sl.options].slice(1).map((o) => o.value);
  const want = [...labels].sort();
  if (have.join('\n') !== want.join('\n')) {
    const cur = sl.value;
    sl.replaceChildren(el('option', { value: '' }, 'All labels'), ...want.map((l) => el('option', { value: l }, l)));
    sl.value = want.includes(cur) ? cur : '';
  }
  let down = 0, up = 0;
  for (const t of torrents.values()) { down += t.state === 'seeding' ? 0 : t.download_rate || 0; up += t.upload_rate || 0; }
  $('rates').textContent = `↓ ${bytes(down)}/s  ↑ ${bytes(up)}/s`;
  $('totals').textContent = `${torrents.size} torrents${ui.selected.size ? `, ${ui.selected.size} selected` : ''}`;
}

// ---------- selection ----------

function select(id, { toggle = false, range = false } = {}) {
  if (range && ui.anchor != null) {
    const a = ui.view.indexOf(ui.anchor), b = ui.view.indexOf(id);
    if (!toggle) ui.selected.clear();
    for (let i = Math.min(a, b); i <= Math.max(a, b); i++) ui.selected.add(ui.view[i]);
  } else if (toggle) {
    if (ui.selected.has(id)) ui.selected.delete(id); else ui.selected.add(id);
    ui.anchor = id;
  } else {
    ui.selected.clear();
    ui.selected.add(id);
    ui.anchor = id;
  }
  ui.cursor = id;
  render(false);
}

function onRowClick(e, id) {
  if (id == null) return;
  e.preventDefault();
  list.focus();
  select(id, { toggle: e.ctrlKey || e.metaKey, range: e.shiftKey });
  if (!e.ctrlKey && !e.metaKey && !e.shiftKey && !details.el.hidden) openDetails(id);
}

function scrollToCursor() {
  const i = ui.view.indexOf(ui.cursor);
  if (i < 0) return;
  const top = i * ROW;
  if (top < list.scrollTop) list.scrollTop = top;
  else if (top + ROW > list.scrollTop + list.clientHeight) list.scrollTop = top + ROW - list.clientHeight;
}

list.addEventListener('keydown', (e) => {
  const n = ui.view.length;
  if (!n) return;
  let i = ui.view.indexOf(ui.cursor);
  const page = Math.max(1, Math.floor(list.clientHeight / ROW) - 1);
  const moves = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page, Home: -n, End: n };
  if (e.key in moves) {
    e.preventDefault();
    i = Math.max(0, Math.min(n - 1, (i < 0 ? 0 : i + moves[e.key])));
    const id = ui.view[i];
    if (e.shiftKey) select(id, { range: true });
    else if (e.ctrlKey || e.metaKey) { ui.cursor = id; render(false); }
    else select(id);
    scrollToCursor();
  } else if (e.key === ' ') {
    e.preventDefault();
    if (ui.cursor == null) ui.cursor = ui.view[0];
    select(ui.cursor, { toggle: true });
  } else if (e.key === 'a' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    ui.view.forEach((id) => ui.selected.add(id));
    render(false);
  } else if (e.key === 'Enter') {
    e.preventDefault();
    if (ui.cursor != null) openDetails(ui.cursor);
  } else if (e.key === 'Delete') {
    e.preventDefault();
    askRemove();
  } else if (e.key === 'Escape') {
    ui.selected.clear();
    render(false);
  }
});
list.addEventListener('focus', () => {
  if (ui.cursor == null && ui.view.length) { ui.cursor = ui.view[0]; render(false); }
});
list.addEventListener('scroll', () => render(false), { passive: true });
window.addEventListener('resize', () => render(false));

document.addEventListener('keydown', (e) => {
  const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(e.target.tagName) || document.querySelector('dialog[open]');
  if (typing || e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === 'Delete') { e.preventDefault(); askRemove(); }
  else if (e.key === '/') { e.preventDefault(); $('search').focus(); }
  else if (e.key === 'a') { e.preventDefault(); openAdd(); }
  else if (e.key === 'p') { e.preventDefault(); act('pause'); }
  else if (e.key === 'r') { e.preventDefault(); act('resume'); }
});

for (const b of document.querySelectorAll('.list-head .col')) {
  b.addEventListener('click', () => {
    const k = b.dataset.sort;
    ui.sort = ui.sort.key === k ? { key: k, dir: -ui.sort.dir } : { key: k, dir: 1 };
    render();
  });
}
for (const id of ['search', 'filter-state', 'filter-label']) $(id).addEventListener('input', () => render());

// ---------- actions ----------

function toast(msg) {
  const t = $('toast');
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

async function act(action) {
  const ids = [...ui.selected];
  await Promise.all(ids.map(async (id) => {
    try {
      const t = await api(`/api/v1/torrents/${id}/${action}`, { method: 'POST' });
      if (t && t.id != null) upsert(t);
    } catch (e) { toast(`${action}: ${e.message}`); }
  }));
}
$('btn-pause').addEventListener('click', () => act('pause'));
$('btn-resume').addEventListener('click', () => act('resume'));

function askRemove() {
  const ids = [...ui.selected];
  if (!ids.length) return;
  const names = ids.map((id) => torrents.get(id)?.name).filter(Boolean);
  $('remove-what').textContent = ids.length === 1 ? `Remove “${names[0]}”?` : `Remove ${ids.length} torrents?`;
  $('remove-data').checked = false;
  $('dlg-remove').showModal();
  $('remove-cancel').focus();
}
$('btn-remove').addEventListener('click', askRemove);
$('remove-cancel').addEventListener('click', () => $('dlg-remove').close());
$('remove-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const del = $('remove-data').checked;
  const ids = [...ui.selected];
  $('dlg-remove').close();
  await Promise.all(ids.map(async (id) => {
    try {
      await api(`/api/v1/torrents/${id}?delete_data=${del}`, { method: 'DELETE' });
      drop(id);
    } catch (err) { toast(`remove: ${err.message}`); }
  }));
  list.focus();
});

// ---------- add ----------

let pendingFiles = []; // File objects dropped on the page
let choosing = null;   // {ids, paused}: step 2 of the add dialog

async function openAdd(files = []) {
  pendingFiles = files;
  choosing = null;
  $('add-step1').hidden = false;
  $('add-step2').hidden = true;
  $('add-ok').textContent = 'Add';
  $('add-error').textContent = '';
  $('add-file').value = '';
  $('add-link').value = '';
  if (!$('add-dir').value) {
    try { const s = await api('/api/v1/session'); $('add-dir').value = s.settings?.download_dir || ''; } catch { /* shown elsewhere */ }
  }
  $('add-files-note').textContent = files.length ? `${files.length} file(s) dropped: ${files.map((f) => f.name).join(', ')}` : '';
  if (files.length) { $('add-step1').prepend(el('p', { class: 'dropped' }, `Dropped: ${files.map((f) => f.name).join(', ')}`)); }
  if (!$('dlg-add').open) $('dlg-add').showModal();
  (files.length ? $('add-ok') : $('add-file')).focus();
}
$('btn-add').addEventListener('click', () => openAdd());
$('add-cancel').addEventListener('click', async () => {
  // Cancelling the file choice removes what step 1 added.
  if (choosing) await Promise.all(choosing.ids.map((id) => api(`/api/v1/torrents/${id}`, { method: 'DELETE' }).catch(() => {})));
  choosing = null;
  closeAdd();
});
function closeAdd() {
  for (const p of $('add-step1').querySelectorAll('.dropped')) p.remove();
  $('dlg-add').close();
}

$('add-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('add-error').textContent = '';
  $('add-ok').disabled = true;
  try {
    if (choosing) await finishChoice(); else await addStep1();
  } catch (err) {
    $('add-error').textContent = err.message;
  } finally {
    $('add-ok').disabled = false;
  }
});

async function addStep1() {
  const files = [...$('add-file').files, ...pendingFiles];
  const link = $('add-link').value.trim();
  if (!files.length && !link) throw new Error('Choose a .torrent file or enter a magnet link or URL.');
  const paused = $('add-paused').checked;
  const choose = $('add-choose').checked;
  const common = {
    download_dir: $('add-dir').value.trim() || undefined,
    labels: $('add-labels').value.split(',').map((s) => s.trim()).filter(Boolean),
    paused: paused || choose,
  };
  const added = [];
  for (const f of files) added.push(await api('/api/v1/torrents', { method: 'POST', body: { ...common, metainfo: await fileBase64(f) } }));
  if (link) {
    const src = /^magnet:/i.test(link) ? { magnet: link } : /^https?:/i.test(link) ? { url: link } : null;
    if (!src) throw new Error('A link must start with magnet:, http: or https:.');
    added.push(await api('/api/v1/torrents', { method: 'POST', body: { ...common, ...src } }));
  }
  added.forEach(upsert);
  pendingFiles = [];
  if (!choose) { closeAdd(); return; }
  // Step 2: the files of the torrents whose metadata is known.
  const box = $('add-files');
  box.replaceChildren();
  const ids = [];
  for (const t of added) {
    const fl = await api(`/api/v1/torrents/${t.id}/files`);
    const real = fl.filter((f) => !f.pad);
    if (!real.length) continue;
    ids.push(t.id);
    box.append(el('h3', {}, t.name));
    for (const f of real) {
      const cb = el('input', { type: 'checkbox', checked: f.priority > 0, 'data-torrent': t.id, 'data-index': f.index });
      box.append(el('label', {}, cb, ` ${f.path} (${bytes(f.length)})`));
    }
  }
  if (!ids.length) {
    // Magnets: the file list comes with the metadata; choose in the details.
    if (!paused) await Promise.all(added.map((t) => api(`/api/v1/torrents/${t.id}/resume`, { method: 'POST' })));
    closeAdd();
    toast('No file list yet (magnet links get it from peers): choose files in the details.');
    return;
  }
  choosing = { ids, paused };
  $('add-files-note').textContent = 'Choose the files to download:';
  $('add-step1').hidden = true;
  $('add-step2').hidden = false;
  $('add-ok').textContent = paused ? 'Done' : 'Start';
  box.querySelector('input')?.focus();
}

async function finishChoice() {
  const per = new Map();
  for (const cb of $('add-files').querySelectorAll('input[type=checkbox]')) {
    const id = Number(cb.dataset.torrent);
    if (!per.has(id)) per.set(id, {});
    per.get(id)[cb.dataset.index] = cb.checked ? 2 : 0;
  }
  for (const [id, set] of per) {
    if (!Object.values(set).some((p) => p > 0)) throw new Error('Keep at least one file of each torrent.');
    await api(`/api/v1/torrents/${id}/files`, { method: 'POST', body: { set } });
    if (!choosing.paused) upsert(await api(`/api/v1/torrents/${id}/resume`, { method: 'POST' }));
  }
  choosing = null;
  closeAdd();
}

// Drag and drop anywhere on the page.
let dragDepth = 0;
document.addEventListener('dragenter', (e) => {
  if (![...(e.dataTransfer?.types || [])].includes('Files')) return;
  dragDepth++;
  $('drop').hidden = false;
});
document.addEventListener('dragleave', () => { if (--dragDepth <= 0) { dragDepth = 0; $('drop').hidden = true; } });
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  e.preventDefault();
  dragDepth = 0;
  $('drop').hidden = true;
  const files = [...(e.dataTransfer?.files || [])].filter((f) => /\.torrent$/i.test(f.name) || f.type === 'application/x-bittorrent');
  if (files.length) openAdd(files);
});

// ---------- details ----------

function openDetails(id) {
  if (id == null) return;
  details.show(id);
}

// ---------- session ----------

async function openSession() {
  $('session-error').textContent = '';
  const dlg = $('dlg-session');
  try {
    const [s, dht] = await Promise.all([api('/api/v1/session'), api('/api/v1/dht').catch(() => ({}))]);
    const st = s.settings || {};
    const rows = [
      ['Version', s.version], ['Listening on', s.listen], ['Peer id', s.peer_id],
      ['Uptime', duration(s.uptime_seconds)], ['Torrents', s.torrents], ['Peers', s.peers],
      ['Download rate', `${bytes(s.download_rate)}/s`], ['Upload rate', `${bytes(s.upload_rate)}/s`],
      ['Downloaded', bytes(s.downloaded)], ['Uploaded', bytes(s.uploaded)],
      ['DHT', dht.enabled ? 'on' : 'off'],
      ...(dht.enabled ? [['DHT address', dht.address], ['DHT nodes', dht.nodes], ['DHT node id', dht.node_id],
        ['DHT packets in / out', `${dht.packets_in} / ${dht.packets_out}`], ['DHT queries answered', dht.queries_answered],
        ['DHT timeouts', dht.timeouts], ['DHT packets refused (malformed, rate-limited)', `${dht.decode_errors}, ${dht.rate_limited}`]] : []),
      // shoal always exchanges peers (BEP 11) on public torrents.
      ['PEX', s.pex === false ? 'off' : 'on (public torrents)'],
      ['Download directory', st.download_dir],
      ['Disk: open files', s.disk?.open_files], ['Disk: read cache', bytes(s.disk?.read_cache_bytes)],
      ['Disk: partial pieces', s.disk?.partial_pieces],
    ];
    $('session-info').replaceChildren(...rows.flatMap(([k, v]) => [el('span', { class: 'k' }, k), el('span', { 'data-key': k }, String(v ?? ''))]));
    $('lim-down-on').checked = !!st.speed_limit_down_enabled;
    $('lim-down').value = st.speed_limit_down ?? '';
    $('lim-up-on').checked = !!st.speed_limit_up_enabled;
    $('lim-up').value = st.speed_limit_up ?? '';
  } catch (e) {
    $('session-error').textContent = e.message;
  }
  if (!dlg.open) dlg.showModal();
}
$('btn-session').addEventListener('click', openSession);
$('session-close').addEventListener('click', () => $('dlg-session').close());
$('session-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    await rpc('session-set', {
      'speed-limit-down-enabled': $('lim-down-on').checked,
      'speed-limit-down': Number($('lim-down').value) || 0,
      'speed-limit-up-enabled': $('lim-up-on').checked,
      'speed-limit-up': Number($('lim-up').value) || 0,
    });
    $('session-error').textContent = '';
    await openSession();
    toast('Limits saved.');
  } catch (err) { $('session-error').textContent = err.message; }
});

// ---------- theme ----------

function applyTheme(t) {
  if (t) document.documentElement.dataset.theme = t; else delete document.documentElement.dataset.theme;
  const dark = t ? t === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  $('btn-theme').textContent = dark ? 'Light' : 'Dark';
  $('btn-theme').setAttribute('aria-label', dark ? 'Switch to the light theme' : 'Switch to the dark theme');
  details.redraw();
}
$('btn-theme').addEventListener('click', () => {
  const dark = getComputedStyle(document.documentElement).colorScheme.includes('dark');
  const t = dark ? 'light' : 'dark';
  localStorage.setItem('shoal-theme', t);
  applyTheme(t);
});

// ---------- data ----------

function upsert(t) {
  const old = torrents.get(t.id);
  torrents.set(t.id, old ? { ...old, ...t } : t);
  sample(t.id);
  render();
}
function drop(id) {
  torrents.delete(id);
  history.delete(id);
  ui.selected.delete(id);
  if (ui.cursor === id) ui.cursor = null;
  details.removed(id);
  render();
}
function sample(id) {
  const t = torrents.get(id);
  if (!t) return;
  const h = history.get(id) || [];
  const now = Date.now();
  if (h.length && now - h[h.length - 1][0] < 900) h[h.length - 1] = [now, t.download_rate || 0, t.upload_rate || 0];
  else h.push([now, t.download_rate || 0, t.upload_rate || 0]);
  while (h.length && now - h[0][0] > HISTORY_MS) h.shift();
  history.set(id, h);
}

async function refresh() {
  if (ui.frozen) return;
  try {
    const all = await api('/api/v1/torrents');
    if (ui.frozen) return;
    const seen = new Set();
    for (const t of all) { seen.add(t.id); torrents.set(t.id, { ...torrents.get(t.id), ...t }); sample(t.id); }
    for (const id of [...torrents.keys()]) if (!seen.has(id)) drop(id);
    ui.stats.refreshes++;
    render();
  } catch (e) {
    if (!(e instanceof HttpError && e.status === 401)) setConn(false, e.message);
  }
}
async function refreshOne(id) {
  try { upsert(await api(`/api/v1/torrents/${id}`)); } catch (e) { if (e.status === 404) drop(id); }
}

function setConn(ok, why = '') {
  ui.stats.connected = ok;
  const c = $('conn');
  c.textContent = ok ? 'live' : `reconnecting… ${why}`;
  c.classList.toggle('off', !ok);
}

let es = null;
let retry = 1000;
function connect() {
  if (es) es.close();
  es = new EventSource('/api/v1/events');
  es.onopen = () => { retry = 1000; setConn(true); refresh(); };
  es.onerror = () => {
    setConn(false);
    es.close();
    es = null;
    // The browser's own retry stops on some errors: reconnect ourselves, backing off.
    setTimeout(connect, retry);
    retry = Math.min(retry * 2, 15000);
  };
  const on = (type, f) => es.addEventListener(type, (m) => {
    if (ui.frozen) return;
    ui.stats.events++;
    let d;
    try { d = JSON.parse(m.data); } catch { return; }
    f(d);
  });
  on('added', (d) => refreshOne(d.id));
  on('metadata', (d) => refreshOne(d.id));
  on('completed', (d) => refreshOne(d.id));
  on('error', (d) => refreshOne(d.id));
  on('removed', (d) => drop(d.id));
  on('lagged', () => refresh());
  on('state', (d) => {
    const t = torrents.get(d.id);
    if (!t) { refreshOne(d.id); return; }
    t.state = d.state;
    if (d.state !== 'downloading' && d.state !== 'seeding') { t.download_rate = 0; t.upload_rate = 0; }
    render();
    refreshOne(d.id);
  });
  on('progress', (d) => {
    const t = torrents.get(d.id);
    if (!t) { refreshOne(d.id); return; }
    Object.assign(t, {
      verified_bytes: d.verified_bytes, wanted_bytes: d.wanted_bytes,
      progress: d.wanted_bytes > 0 ? d.verified_bytes / d.wanted_bytes : 1,
      download_rate: d.download_rate, upload_rate: d.upload_rate, peers: d.peers,
    });
    sample(d.id);
    render();
    details.live(d.id);
  });
}

// ---------- login ----------

let started = false;
async function start() {
  let st;
  try { st = await api('/api/v1/login'); } catch (e) { setConn(false, e.message); setTimeout(start, 3000); return; }
  $('btn-logout').hidden = !st.auth_required;
  if (!st.logged_in) { showLogin(); return; }
  if (started) return;
  started = true;
  connect();
  refresh();
  if (REFRESH > 0) setInterval(refresh, REFRESH * 1000);
  // Speed samples continue while nothing is reported.
  setInterval(() => { for (const id of torrents.keys()) sample(id); details.live(null); }, 2000);
}
function showLogin() {
  const d = $('dlg-login');
  $('login-error').textContent = '';
  if (!d.open) d.showModal();
  $('login-user').focus();
}
$('dlg-login').addEventListener('cancel', (e) => e.preventDefault());
$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const user = $('login-user').value, pass = $('login-pass').value;
  try {
    await api('/api/v1/login', { method: 'POST', body: { user, password: pass } });
    auth.set(user, pass);
    $('login-pass').value = '';
    $('dlg-login').close();
    start();
  } catch (err) {
    $('login-error').textContent = err.status === 401 ? 'Wrong user name or password.' : err.message;
  }
});
$('btn-logout').addEventListener('click', async () => {
  auth.clear();
  await api('/api/v1/logout', { method: 'POST' }).catch(() => {});
  location.reload();
});
window.addEventListener('shoal-unauthorized', () => { if (started) showLogin(); });

// ---------- test hook ----------

// Used by the browser tests: feed fake torrents (no server refresh after),
// and read what the page holds.
window.__shoalUI = {
  feed(list) {
    ui.frozen = true;
    torrents.clear();
    for (const t of list) torrents.set(t.id, t);
    render();
  },
  stats: ui.stats,
  viewLength: () => { computeView(); return ui.view.length; },
  selected: () => [...ui.selected],
};

applyTheme(localStorage.getItem('shoal-theme'));
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => applyTheme(localStorage.getItem('shoal-theme')));
render();
start();
