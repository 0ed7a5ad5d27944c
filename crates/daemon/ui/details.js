// The details panel of one torrent: files (progress, priority, stream
// links), peers, trackers, a map of pieces and a speed graph (canvas).
// The open tab reloads every 2 s and on the torrent's progress events.
import { api, bytes, el, rate } from './util.js';

const TABS = ['Files', 'Peers', 'Trackers', 'Pieces', 'Speed'];
const PRIOS = [[0, 'Skip'], [1, 'Low'], [2, 'Normal'], [3, 'High']];

export class Details {
  constructor(root, ctx) {
    this.el = root;
    this.ctx = ctx;
    this.id = null;
    this.tab = 'Files';
    this.timer = null;
    this.loading = false;
    this.lastLive = 0;
    this.pieces = null;
    const tabs = el('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Details' });
    this.title = el('h2', {});
    tabs.append(this.title);
    this.tabButtons = TABS.map((t) => {
      const b = el('button', { type: 'button', role: 'tab', id: `tab-${t.toLowerCase()}`, 'aria-selected': 'false', 'aria-controls': 'tabpanel' }, t);
      b.addEventListener('click', () => this.select(t));
      b.addEventListener('keydown', (e) => {
        const i = TABS.indexOf(t);
        const j = e.key === 'ArrowRight' ? (i + 1) % TABS.length : e.key === 'ArrowLeft' ? (i + TABS.length - 1) % TABS.length : -1;
        if (j >= 0) { e.preventDefault(); this.select(TABS[j]); this.tabButtons[j].focus(); }
      });
      tabs.append(b);
      return b;
    });
    tabs.append(el('span', { class: 'grow' }));
    const close = el('button', { type: 'button', id: 'details-close', 'aria-label': 'Close the details' }, 'Close');
    close.addEventListener('click', () => this.hide());
    tabs.append(close);
    this.panel = el('div', { class: 'tabpanel', id: 'tabpanel', role: 'tabpanel', tabIndex: 0 });
    root.append(tabs, this.panel);
    root.addEventListener('keydown', (e) => { if (e.key === 'Escape') { this.hide(); document.getElementById('list').focus(); } });
  }

  show(id) {
    const changed = this.id !== id;
    this.id = id;
    this.el.hidden = false;
    if (changed) this.panel.replaceChildren();
    this.refreshSummary();
    this.select(this.tab);
    clearInterval(this.timer);
    this.timer = setInterval(() => this.load(), 2000);
  }

  hide() {
    this.el.hidden = true;
    this.id = null;
    clearInterval(this.timer);
  }

  removed(id) { if (this.id === id) this.hide(); }

  refreshSummary() {
    if (this.id == null) return;
    const t = this.ctx.torrent(this.id);
    this.title.textContent = t ? t.name : '';
  }

  select(tab) {
    this.tab = tab;
    for (const b of this.tabButtons) {
      const on = b.textContent === tab;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
    }
    this.panel.setAttribute('aria-labelledby', `tab-${tab.toLowerCase()}`);
    this.panel.replaceChildren();
    this.load();
  }

  /** A progress event or a sampling tick: redraw the graph, reload files now and then. */
  live(id) {
    if (this.id == null || (id != null && id !== this.id)) return;
    if (this.tab === 'Speed') this.drawSpeed();
    else if (id != null && Date.now() - this.lastLive > 1000) { this.lastLive = Date.now(); this.load(); }
  }

  redraw() {
    if (this.tab === 'Speed') this.drawSpeed();
    if (this.tab === 'Pieces' && this.pieces) this.drawPieces(this.pieces);
  }

  async load() {
    if (this.id == null || this.loading) return;
    const id = this.id, tab = this.tab;
    this.loading = true;
    try {
      const t = this.ctx.torrent(id);
      if (tab === 'Files') this.files(id, t, await api(`/api/v1/torrents/${id}/files`));
      else if (tab === 'Peers') this.peers(await api(`/api/v1/torrents/${id}/peers`));
      else if (tab === 'Trackers') this.trackers(await api(`/api/v1/torrents/${id}/trackers`));
      else if (tab === 'Pieces') { this.pieces = await api(`/api/v1/torrents/${id}/pieces`); this.drawPieces(this.pieces); }
      else this.drawSpeed();
    } catch (e) {
      if (this.id === id) this.panel.replaceChildren(el('p', { class: 'error' }, e.message));
    } finally {
      this.loading = false;
    }
  }

  /** Keeps the focused control across a reload of a table. */
  keepFocus(f) {
    const a = document.activeElement;
    const key = a && this.panel.contains(a) ? a.dataset.key : null;
    f();
    if (key) this.panel.querySelector(`[data-key="${key}"]`)?.focus();
  }

  files(id, t, files) {
    const real = files.filter((f) => !f.pad);
    const wanted = real.filter((f) => f.priority > 0).map((f) => f.priority);
    const uniform = wanted.length && Math.min(...wanted) === Math.max(...wanted);
    const hash = t?.info_hash || id;
    const rows = real.map((f) => {
      const pct = f.length ? Math.floor((f.verified_bytes / f.length) * 1000) / 10 : 100;
      const shown = f.priority === 0 ? 0 : uniform ? 2 : f.priority;
      const sel = el('select', { 'aria-label': `Priority of ${f.path}`, 'data-key': `prio-${f.index}` },
        ...PRIOS.map(([v, n]) => el('option', { value: v, selected: v === shown }, n)));
      sel.addEventListener('change', async () => {
        try { await api(`/api/v1/torrents/${id}/files`, { method: 'POST', body: { set: { [f.index]: Number(sel.value) } } }); this.load(); }
        catch (e) { this.ctx.toast(`priority: ${e.message}`); this.load(); }
      });
      const url = f.stream_url || `/stream/${hash}/${f.index}`;
      const link = el('a', { href: url, target: '_blank', rel: 'noopener', 'data-key': `open-${f.index}`, 'aria-label': `Stream or open ${f.path}` }, 'Open');
      return el('tr', {},
        el('td', {}, f.path), el('td', { class: 'num' }, bytes(f.length)),
        el('td', { class: 'num' }, `${pct.toFixed(1)}%`), el('td', {}, sel), el('td', {}, link));
    });
    this.keepFocus(() => this.panel.replaceChildren(table(['Path', 'Size', 'Done', 'Priority', 'Stream'], rows, [1, 2])));
    if (!real.length) this.panel.replaceChildren(el('p', { class: 'muted' }, 'No file list yet: it arrives with the metadata.'));
  }

  peers(peers) {
    const flags = (p) => [
      p.peer_choking ? '' : 'D', p.peer_interested ? 'i' : '', p.am_choking ? '' : 'U',
      p.am_interested ? 'I' : '', p.snubbed ? 'S' : '', p.encrypted ? 'E' : '',
      p.transport === 'utp' ? 'P' : '', p.origin ? p.origin[0].toUpperCase() : '',
    ].join('');
    const rows = peers.filter((p) => p.connected !== false).map((p) => el('tr', {},
      el('td', {}, p.address), el('td', {}, p.client || ''), el('td', { title: 'D: downloading from, U: uploading to, i/I: interested, S: snubbed, E: encrypted, P: µTP, last: origin' }, flags(p)),
      el('td', { class: 'num' }, rate(p.download_rate)), el('td', { class: 'num' }, rate(p.upload_rate)),
      el('td', { class: 'num' }, `${((p.progress || 0) * 100).toFixed(1)}%`),
      el('td', {}, p.encrypted ? 'yes' : 'no')));
    this.panel.replaceChildren(rows.length ? table(['Address', 'Client', 'Flags', 'Down', 'Up', 'Progress', 'Encrypted'], rows, [3, 4, 5])
      : el('p', { class: 'muted' }, 'No peers connected.'));
  }

  trackers(list) {
    const status = (t) => t.last_error ? `error: ${t.last_error}` : t.warning ? `warning: ${t.warning}` : t.announces_ok ? 'working' : t.announces_failed ? 'failing' : 'not contacted yet';
    const rows = list.map((t) => el('tr', {},
      el('td', { class: 'num' }, String(t.tier)), el('td', {}, t.url), el('td', {}, status(t)),
      el('td', { class: 'num' }, t.seeders ?? ''), el('td', { class: 'num' }, t.leechers ?? ''),
      el('td', { class: 'num' }, t.last_peers ?? ''), el('td', { class: 'num' }, `${t.announces_ok}/${t.announces_ok + t.announces_failed}`)));
    this.panel.replaceChildren(rows.length ? table(['Tier', 'URL', 'Status', 'Seeders', 'Leechers', 'Last peers', 'Announces ok'], rows, [0, 3, 4, 5, 6])
      : el('p', { class: 'muted' }, 'No trackers (DHT and PEX only).'));
  }

  canvas(label) {
    let c = this.panel.querySelector('canvas');
    if (!c) {
      c = el('canvas', { role: 'img', 'aria-label': label });
      this.panel.replaceChildren(c, el('p', { class: 'muted', id: 'canvas-note' }));
    }
    const w = Math.max(200, this.panel.clientWidth - 24);
    const h = Math.max(80, this.panel.clientHeight - 60);
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
      c.style.width = `${w}px`; c.style.height = `${h}px`;
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    return { c, g, w, h };
  }

  drawPieces(p) {
    if (this.tab !== 'Pieces') return;
    const { c, g, w, h } = this.canvas('Map of pieces: filled cells are verified');
    const css = getComputedStyle(document.documentElement);
    const bits = Uint8Array.from(atob(p.bitfield || ''), (ch) => ch.charCodeAt(0));
    const n = p.count || 0;
    c.setAttribute('aria-label', `Map of pieces: ${p.have} of ${n} verified`);
    this.panel.querySelector('#canvas-note').textContent = `${p.have} of ${n} pieces verified`;
    if (!n) return;
    // Square cells filling the area; one cell per piece, or per group of pieces.
    const cells = Math.min(n, Math.floor((w * h) / 16));
    const side = Math.max(2, Math.floor(Math.sqrt((w * h) / cells)));
    const cols = Math.max(1, Math.floor(w / side));
    const per = n / cells;
    const have = (i) => (bits[i >> 3] >> (7 - (i & 7))) & 1;
    for (let k = 0; k < cells; k++) {
      const a = Math.floor(k * per), b = Math.max(a + 1, Math.floor((k + 1) * per));
      let got = 0;
      for (let i = a; i < b; i++) got += have(i);
      g.fillStyle = got === b - a ? css.getPropertyValue('--bar') : got ? css.getPropertyValue('--muted') : css.getPropertyValue('--bar-bg');
      g.fillRect((k % cols) * side, Math.floor(k / cols) * side, side - 1, side - 1);
    }
  }

  drawSpeed() {
    if (this.tab !== 'Speed' || this.id == null) return;
    const { g, w, h } = this.canvas('Download and upload rate over the last 5 minutes');
    const css = getComputedStyle(document.documentElement);
    const hist = this.ctx.history(this.id);
    const now = Date.now(), span = 5 * 60 * 1000;
    const max = Math.max(1024, ...hist.map(([, d, u]) => Math.max(d, u)));
    g.strokeStyle = css.getPropertyValue('--line');
    g.strokeRect(0.5, 0.5, w - 1, h - 1);
    const line = (k, color) => {
      g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
      hist.forEach((s, i) => {
        const x = w - ((now - s[0]) / span) * w, y = h - 4 - (s[k] / max) * (h - 8);
        if (i) g.lineTo(x, y); else g.moveTo(x, y);
      });
      g.stroke();
    };
    line(1, css.getPropertyValue('--bar'));
    line(2, css.getPropertyValue('--done'));
    const last = hist[hist.length - 1] || [0, 0, 0];
    this.panel.querySelector('#canvas-note').textContent =
      `Last 5 minutes, peak ${rate(max) || '0 B/s'}. Download (blue) ${rate(last[1]) || '0 B/s'}, upload (green) ${rate(last[2]) || '0 B/s'}.`;
  }
}

function table(heads, rows, numeric = []) {
  return el('table', { class: 'grid' },
    el('thead', {}, el('tr', {}, ...heads.map((h, i) => el('th', { class: numeric.includes(i) ? 'num' : '', scope: 'col' }, h)))),
    el('tbody', {}, ...rows));
}
