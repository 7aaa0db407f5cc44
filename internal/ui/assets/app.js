// retentiond investigator console. Plain JavaScript, no build step, no
// dependencies. Every record field is attacker-chosen text: it reaches the
// page through textContent only (the CSP's Trusted Types make any HTML sink
// throw). The token lives in this closure's memory, never in storage.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };

  const ROW_H = 24;          // px, fixed so the table can be virtualised
  const TABLE_LIMIT = 10000; // rows streamed into the table; exports take all
  const FIELDS = [
    { f: 'ip:', help: 'address or CIDR' },
    { f: 'domain:', help: 'host or *.suffix' },
    { f: 'path:', help: 'exact, prefix*, *contains*' },
    { f: 'ua:', help: 'user agent, case-insensitive' },
    { f: 'path~', help: 'regular expression' },
    { f: 'ua~', help: 'regular expression' },
    { f: 'domain~', help: 'regular expression' },
  ];
  const QUICK = [
    ['15m', 15 * 60e3], ['1h', 3600e3], ['24h', 86400e3], ['7d', 7 * 86400e3],
    ['30d', 30 * 86400e3], ['90d', 90 * 86400e3], ['1y', 365 * 86400e3],
  ];

  let token = ''; // the bearer token: this closure's memory only
  const st = {
    me: null, cutoff: null, retention: '',
    caseId: '', reason: '', q: '', from: '-24h', to: '', fromURL: false,
    cases: {}, caseInfo: null, // the case registry's open cases, and the chosen one
    local: false, rows: [], top: {}, gen: 0, view: 'search',
  };
  window.__rtd = st; // page state for the browser tests; the token is not in it

  // ---- API ---------------------------------------------------------------
  class APIError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }
  async function call(path, params, opts = {}) {
    const u = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== '') u.searchParams.set(k, v);
    const headers = {};
    const tok = opts.token !== undefined ? opts.token : token;
    if (tok) headers.Authorization = 'Bearer ' + tok;
    const r = await fetch(u, { headers, credentials: 'omit', cache: 'no-store', signal: opts.signal });
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { const j = await r.json(); if (j && j.error) msg = j.error; } catch (_) { /* not JSON */ }
      throw new APIError(r.status, msg);
    }
    return r;
  }
  const getJSON = async (path, params, opts) => (await call(path, params, opts)).json();
  const audited = (extra) => Object.assign({ q: st.q, from: absFrom(), to: absTo(), case: st.caseId, reason: st.reason }, extra);

  // ---- time --------------------------------------------------------------
  function parseTimeInput(s, now) {
    s = (s || '').trim();
    if (!s) return null;
    const m = /^-(\d+)(ms|s|m|h|d)$/.exec(s);
    if (m) {
      const mult = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 }[m[2]];
      return new Date(now - Number(m[1]) * mult);
    }
    if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return new Date(s + 'T00:00:00Z');
    const d = new Date(s);
    return isNaN(d) ? undefined : d;
  }
  let nowAt = Date.now();
  function range() {
    const now = nowAt;
    let from = parseTimeInput(st.from, now);
    let to = parseTimeInput(st.to, now) || new Date(now + 60e3);
    if (from === undefined || to === undefined) throw new Error('time: use RFC 3339 (2026-11-20T13:00:00Z), a date (2026-11-20) or a relative time (-24h, -7d)');
    if (!from || (st.cutoff && from < st.cutoff)) from = st.cutoff || new Date(now - 730 * 86400e3);
    // A registered case bounds what its searches may see: the daemon refuses
    // a range outside it, so the console never asks for one.
    const c = st.caseInfo;
    if (c) {
      if (from < c.from) from = c.from;
      if (to > c.to) to = c.to;
    }
    return { from, to };
  }
  const absFrom = () => range().from.toISOString();
  const absTo = () => range().to.toISOString();
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  function fmtTime(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    if (!st.local) return iso.replace('T', ' ');
    const off = -d.getTimezoneOffset();
    const sign = off >= 0 ? '+' : '-';
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${sign}${pad(Math.floor(Math.abs(off) / 60))}:${pad(Math.abs(off) % 60)}`;
  }
  const fmtDay = (d) => d.toISOString().slice(0, 10);
  const fmtNum = (n) => Number(n).toLocaleString('en-US');

  // ---- URL state (deep links) --------------------------------------------
  function readURL() {
    const p = new URLSearchParams(location.search);
    if (p.has('q')) st.q = p.get('q');
    if (p.has('from')) { st.from = p.get('from'); st.fromURL = true; }
    if (p.has('to')) st.to = p.get('to');
    if (p.has('case')) st.caseId = p.get('case');
    if (p.has('view')) st.view = p.get('view');
    return p.get('reason') || '';
  }
  // The reason is never written to the URL: a shared link makes its
  // recipient give their own.
  function writeURL() {
    const p = new URLSearchParams();
    if (st.q) p.set('q', st.q);
    if (st.from) p.set('from', st.from);
    if (st.to) p.set('to', st.to);
    if (st.caseId) p.set('case', st.caseId);
    if (st.view !== 'search') p.set('view', st.view);
    history.replaceState(null, '', '?' + p.toString());
  }

  // ---- screens -----------------------------------------------------------
  function show(id) {
    for (const s of ['signin', 'gate', 'view-search', 'view-history', 'view-audit', 'view-retention']) $(s).hidden = s !== id;
    for (const b of document.querySelectorAll('#nav .tab')) b.classList.toggle('on', 'view-' + b.dataset.view === id);
  }
  function isAdmin() { return !!(st.me && st.me.roles.includes('admin')); }
  function setBanner() {
    const on = !!(st.caseId && st.reason);
    $('banner').hidden = !on;
    $('nav').hidden = !on;
    $('bannerCase').textContent = st.caseId + (st.caseInfo && st.caseInfo.title ? ' — ' + st.caseInfo.title : '');
    $('bannerReason').textContent = st.reason;
    for (const b of document.querySelectorAll('.admin-only')) b.hidden = !isAdmin();
  }

  async function boot() {
    const urlReason = readURL();
    $('signout').addEventListener('click', () => { token = ''; location.reload(); });
    try {
      st.me = await getJSON('/api/v1/whoami', {}, { token: '' }); // development mode: loopback, no token
    } catch (e) {
      show('signin');
      $('token').focus();
      $('signinForm').addEventListener('submit', async (ev) => {
        ev.preventDefault();
        $('signinError').textContent = '';
        const tok = $('token').value.trim();
        try {
          st.me = await getJSON('/api/v1/whoami', {}, { token: tok });
          token = tok;
          $('token').value = '';
          await signedIn(urlReason);
        } catch (err) {
          $('signinError').textContent = err.status === 401 ? 'That token is not valid.' : err.message;
        }
      });
      return;
    }
    await signedIn(urlReason);
  }

  async function signedIn(urlReason) {
    $('who').textContent = st.me.dev_mode ? 'development mode (loopback, no token)' : 'signed in as ' + st.me.name;
    $('signout').hidden = st.me.dev_mode;
    try {
      const r = await getJSON('/api/v1/retention');
      st.cutoff = new Date(r.cutoff);
      st.retention = r.retention;
    } catch (e) { /* older daemon: no cutoff shown */ }
    wireSearch();
    if (st.caseId && urlReason) {
      st.reason = urlReason;
      await loadCases();
      startCase();
      return;
    }
    openGate();
  }

  async function openGate() {
    setBanner();
    show('gate');
    $('caseId').value = st.caseId;
    $('reason').value = '';
    $('gateError').textContent = '';
    (st.caseId ? $('reason') : $('caseId')).focus();
    await loadCases();
  }

  // loadCases reads the case registry's open cases, when the daemon has one.
  async function loadCases() {
    try {
      const r = await getJSON('/api/v1/cases', { state: 'open' });
      const list = r.cases || [];
      const dl = $('caseList');
      dl.replaceChildren();
      st.cases = {};
      let pending = 0;
      for (const c of list) {
        st.cases[c.id] = { id: c.id, title: c.title, scope: c.scope || '', from: new Date(c.from), to: new Date(c.to), searchable: c.searchable };
        if (!c.searchable) { pending++; continue; }
        const o = el('option');
        o.value = c.id;
        o.label = `${c.title} (${fmtDay(new Date(c.from))} to ${fmtDay(new Date(c.to))})`;
        dl.append(o);
      }
      const n = list.length - pending;
      $('caseHint').textContent = (n ? `${n} approved open case(s) you may search under.` : 'No approved open case in the registry.') +
        (pending ? ` ${pending} more await a second admin's approval.` : '');
    } catch (e) {
      $('caseHint').textContent = 'Type the incident id from your case register.';
    }
  }

  function startCase() {
    nowAt = Date.now();
    st.caseInfo = st.cases[st.caseId] || null;
    const c = st.caseInfo;
    if (c && !st.fromURL) {
      // Open on the case's own range.
      st.from = c.from.toISOString();
      st.to = c.to.getTime() < nowAt ? c.to.toISOString() : '';
    }
    setBanner();
    buildQuick();
    go(st.view === 'search' ? 'search' : st.view);
  }

  function go(view) {
    if (!st.caseId || !st.reason) return openGate();
    if ((view === 'audit' || view === 'retention') && !isAdmin()) view = 'search';
    st.view = view;
    writeURL();
    show('view-' + view);
    if (view === 'search') runSearch();
    if (view === 'history') loadHistory();
    if (view === 'audit') loadAudit();
    if (view === 'retention') loadRetention();
  }

  // ---- search view -------------------------------------------------------
  let wired = false;
  function wireSearch() {
    if (wired) return;
    wired = true;
    $('gateForm').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const c = $('caseId').value.trim(), r = $('reason').value.trim();
      if (!c || !r) { $('gateError').textContent = 'Both the case id and the reason are required.'; return; }
      st.caseId = c; st.reason = r;
      startCase();
    });
    $('changeCase').addEventListener('click', () => { st.reason = ''; openGate(); });
    for (const b of document.querySelectorAll('#nav .tab')) b.addEventListener('click', () => go(b.dataset.view));
    $('queryForm').addEventListener('submit', (ev) => { ev.preventDefault(); hideComplete(); st.q = $('q').value.trim(); st.from = $('from').value.trim(); st.to = $('to').value.trim(); nowAt = Date.now(); runSearch(); });
    $('localTime').addEventListener('change', () => { st.local = $('localTime').checked; $('thead').firstChild.textContent = st.local ? 'time (local)' : 'time (UTC)'; renderRows(true); });
    $('viewport').addEventListener('scroll', () => renderRows(false), { passive: true });
    $('rows').addEventListener('click', onCellClick);
    document.addEventListener('click', (ev) => { if (!$('pivot').contains(ev.target) && !ev.target.closest('#rows')) $('pivot').hidden = true; });
    document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { $('pivot').hidden = true; hideComplete(); } });
    $('exportNdjson').addEventListener('click', () => exportFile('ndjson'));
    $('exportCsv').addEventListener('click', () => exportFile('csv'));
    $('exportBundle').addEventListener('click', exportBundle);
    wireComplete();
    wireHistogram();
    buildQuick();
    window.addEventListener('resize', () => { drawHist(); renderRows(true); });
  }

  function buildQuick() {
    const box = $('quick');
    box.replaceChildren();
    for (const [label, ms] of QUICK) {
      const b = el('button', label, 'quick');
      b.type = 'button';
      b.dataset.range = '-' + label;
      const tooFar = st.cutoff && (Date.now() - ms) < st.cutoff.getTime();
      if (tooFar) {
        b.disabled = true;
        b.title = `Records before ${fmtDay(st.cutoff)} were destroyed on schedule.`;
      }
      b.addEventListener('click', () => { st.from = '-' + label; st.to = ''; nowAt = Date.now(); runSearch(); });
      box.append(b);
    }
    const all = el('button', 'all retained', 'quick');
    all.type = 'button';
    all.addEventListener('click', () => { st.from = st.cutoff ? st.cutoff.toISOString() : '-730d'; st.to = ''; nowAt = Date.now(); runSearch(); });
    box.append(all);
    let note = st.cutoff ? `Retention ${st.retention}: records before ${fmtDay(st.cutoff)} were destroyed on schedule; no range reaches past it.` : '';
    const c = st.caseInfo;
    if (c) note += ` Case ${c.id} may see ${c.from.toISOString()} to ${c.to.toISOString()}${c.scope ? ', limited to ' + c.scope : ''}.`;
    $('cutoff').textContent = note;
  }

  function syncInputs() {
    $('q').value = st.q;
    $('from').value = st.from;
    $('to').value = st.to;
    for (const b of document.querySelectorAll('#quick button')) b.classList.toggle('on', b.dataset.range === st.from && !st.to);
  }

  let inflight = null;
  async function runSearch() {
    syncInputs();
    writeURL();
    $('pivot').hidden = true;
    $('qerr').hidden = true;
    $('exportStatus').textContent = '';
    let r;
    try { r = range(); } catch (e) { showQueryError(e.message); return; }
    if (st.cutoff && parseTimeInput(st.from, nowAt) && parseTimeInput(st.from, nowAt) < st.cutoff) {
      $('cutoff').textContent = `The range starts before ${fmtDay(st.cutoff)}: records before it were destroyed on schedule, so the search starts there.`;
    }
    if (inflight) inflight.abort();
    const ctl = new AbortController();
    inflight = ctl;
    const gen = ++st.gen;
    st.rows = [];
    st.total = null;
    renderRows(true);
    $('summary').textContent = 'Searching…';
    document.body.dataset.state = 'searching';
    const t0 = performance.now();
    const jobs = [
      streamRows(gen, ctl.signal, t0),
      loadHistogram(gen, r, ctl.signal),
      loadCount(gen, ctl.signal),
      loadTops(gen, ctl.signal),
    ];
    const res = await Promise.allSettled(jobs);
    if (gen !== st.gen) return;
    const bad = res.find((x) => x.status === 'rejected' && x.reason && x.reason.name !== 'AbortError');
    if (bad) {
      const e = bad.reason;
      if (e.status === 400) showQueryError(e.message); else $('summary').textContent = 'Error: ' + e.message;
    }
    document.body.dataset.state = bad ? 'error' : 'done';
  }

  function showQueryError(msg) {
    $('qerr').hidden = false;
    $('qerrMsg').textContent = msg;
    const m = /at position (\d+)/.exec(msg);
    const pre = $('qerrText');
    if (m) {
      const pos = Number(m[1]) - 1;
      pre.textContent = st.q + '\n' + ' '.repeat(Math.max(pos, 0)) + '^';
      $('q').focus();
      $('q').setSelectionRange(pos, pos + ((/query term "([^"]*)"/.exec(msg) || [, ''])[1].length || 1));
    } else {
      pre.textContent = '';
    }
    $('summary').textContent = '';
    document.body.dataset.state = 'error';
  }

  async function streamRows(gen, signal, t0) {
    const resp = await call('/api/v1/search', audited({ limit: TABLE_LIMIT, format: 'ndjson' }), { signal });
    const reader = resp.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let first = true;
    for (;;) {
      const { value, done } = await reader.read();
      if (gen !== st.gen) { reader.cancel(); return; }
      if (value) buf += dec.decode(value, { stream: true });
      let i;
      const batch = [];
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line) batch.push(JSON.parse(line));
      }
      if (batch.length) {
        for (const r of batch) st.rows.push(r);
        if (first) { first = false; st.firstResultMs = performance.now() - t0; document.body.dataset.firstResult = String(Math.round(st.firstResultMs)); }
        scheduleRender();
      }
      if (done) break;
    }
    st.searchMs = performance.now() - t0;
    updateSummary();
  }

  async function loadCount(gen, signal) {
    const j = await getJSON('/api/v1/count', audited(), { signal });
    if (gen !== st.gen) return;
    st.total = j.count;
    updateSummary();
  }

  function updateSummary() {
    const n = st.rows.length;
    let s = `${fmtNum(n)} record${n === 1 ? '' : 's'} shown`;
    if (st.total !== null && st.total !== undefined) {
      s = st.total > n ? `${fmtNum(n)} of ${fmtNum(st.total)} records shown (the table stops at ${fmtNum(TABLE_LIMIT)}; exports hold all)` : `${fmtNum(st.total)} records`;
    }
    $('summary').textContent = s;
  }

  // ---- virtualised table ---------------------------------------------------
  const COLS = ['time', 'ip', 'domain', 'path', 'user_agent'];
  let pool = [];
  let renderQueued = false;
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => { renderQueued = false; renderRows(false); updateSummary(); });
  }
  let lastFirst = -1;
  function renderRows(force) {
    const vp = $('viewport');
    $('spacer').style.height = (st.rows.length * ROW_H) + 'px';
    const need = Math.ceil(vp.clientHeight / ROW_H) + 2;
    while (pool.length < need) {
      const row = el('div', null, 'row');
      for (const c of COLS) { const s = el('span'); s.dataset.field = c; row.append(s); }
      $('rows').append(row);
      pool.push(row);
    }
    const first = Math.floor(vp.scrollTop / ROW_H);
    if (!force && first === lastFirst && !renderQueued && pool.length >= need && pool._n === st.rows.length) return;
    lastFirst = first;
    pool._n = st.rows.length;
    $('rows').style.transform = `translateY(${first * ROW_H}px)`;
    for (let k = 0; k < pool.length; k++) {
      const row = pool[k];
      const rec = st.rows[first + k];
      row.hidden = !rec;
      if (!rec) continue;
      row.dataset.index = String(first + k);
      const cells = row.children;
      for (let c = 0; c < COLS.length; c++) {
        const v = COLS[c] === 'time' ? fmtTime(rec.time) : (rec[COLS[c]] ?? '');
        if (cells[c].textContent !== v) { cells[c].textContent = v; cells[c].title = v; }
      }
    }
  }

  // ---- pivots --------------------------------------------------------------
  function quoteValue(v) {
    return /[\s"\\]/.test(v) || v === '' ? '"' + v.replace(/["\\]/g, (m) => '\\' + m) + '"' : v;
  }
  function ipNet(ip) {
    if (ip.includes(':')) {
      const parts = expand6(ip).slice(0, 3);
      return parts.join(':') + '::/48';
    }
    const o = ip.split('.');
    return `${o[0]}.${o[1]}.${o[2]}.0/24`;
  }
  function expand6(ip) {
    const [head, tail] = ip.split('::');
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail ? tail.split(':') : [];
    const fill = tail !== undefined ? Array(8 - h.length - t.length).fill('0') : [];
    return h.concat(fill, t).map((x) => x.replace(/^0+(?=.)/, ''));
  }
  const fieldName = { ip: 'ip', domain: 'domain', path: 'path', user_agent: 'ua' };
  function addTerm(term) {
    st.q = st.q ? st.q + ' ' + term : term;
    nowAt = Date.now();
    runSearch();
  }
  function setQuery(q) { st.q = q; nowAt = Date.now(); runSearch(); }
  function onCellClick(ev) {
    const cell = ev.target.closest('span[data-field]');
    if (!cell) return;
    const rec = st.rows[Number(cell.parentElement.dataset.index)];
    if (!rec) return;
    const field = cell.dataset.field;
    const menu = $('pivot');
    menu.replaceChildren();
    const item = (label, fn, key) => {
      const b = el('button', label);
      b.type = 'button';
      b.dataset.pivot = key;
      b.addEventListener('click', () => { menu.hidden = true; fn(); });
      menu.append(b);
    };
    if (field === 'time') {
      const t = new Date(rec.time).getTime();
      item('±5 minutes around this time', () => { st.from = new Date(t - 300e3).toISOString(); st.to = new Date(t + 300e3).toISOString(); runSearch(); }, 'around');
    } else {
      const v = rec[field];
      const fn = fieldName[field];
      if (field === 'ip') {
        item('This IP everywhere', () => setQuery('ip:' + v), 'ip');
        const net = ipNet(v);
        item(`Its ${v.includes(':') ? '/48' : '/24'} (${net})`, () => setQuery('ip:' + net), 'net');
      } else if (field === 'domain') {
        item('This domain', () => addTerm('domain:' + v), 'domain');
      } else if (field === 'user_agent') {
        item('This user agent', () => addTerm('ua:' + quoteValue(v.replace(/\*/g, ''))), 'ua');
      } else if (field === 'path') {
        item('This path', () => addTerm('path:' + quoteValue(v.replace(/\*/g, ''))), 'path');
      }
      item('Exclude this value', () => addTerm('-' + fn + ':' + quoteValue(field === 'ip' || field === 'domain' ? v : v.replace(/\*/g, ''))), 'exclude');
      item('Copy value', () => navigator.clipboard && navigator.clipboard.writeText(v), 'copy');
    }
    const r = cell.getBoundingClientRect();
    menu.style.left = Math.min(r.left, window.innerWidth - 260) + 'px';
    menu.style.top = (r.bottom + window.scrollY) + 'px';
    menu.hidden = false;
    ev.stopPropagation();
  }

  // ---- top values ----------------------------------------------------------
  async function loadTops(gen, signal) {
    await Promise.all(['domain', 'path', 'user_agent', 'ip'].map(async (by) => {
      const j = await getJSON('/api/v1/stats', audited({ by, top: 10 }), { signal });
      if (gen !== st.gen) return;
      st.top[by] = j.top || [];
      const ol = document.querySelector(`.top[data-by="${by}"] ol`);
      ol.replaceChildren();
      for (const b of st.top[by]) {
        const li = el('li');
        const btn = el('button', b.key, 'val');
        btn.type = 'button';
        btn.title = `Filter on ${b.key}`;
        btn.addEventListener('click', () => {
          const f = fieldName[by];
          addTerm(f + ':' + (by === 'ip' || by === 'domain' ? b.key : quoteValue(b.key.replace(/\*/g, ''))));
        });
        li.append(btn, el('span', fmtNum(b.count), 'n'));
        ol.append(li);
      }
      if (!st.top[by].length) ol.append(el('li', 'no matches', 'hint'));
    }));
  }

  // ---- histogram -----------------------------------------------------------
  let hist = null;
  function stepFor(ms) {
    if (ms <= 6 * 3600e3) return ['1m', 60e3];
    if (ms <= 14 * 86400e3) return ['1h', 3600e3];
    return ['1d', 86400e3];
  }
  async function loadHistogram(gen, r, signal) {
    const [step] = stepFor(r.to - r.from);
    const j = await getJSON('/api/v1/histogram', audited({ step }), { signal });
    if (gen !== st.gen) return;
    hist = { start: new Date(j.start).getTime(), step: j.step_seconds * 1000, counts: j.counts, from: r.from.getTime(), to: r.to.getTime(), label: step };
    drawHist();
    $('histInfo').textContent = `${fmtNum(j.total)} matches, per ${step === '1m' ? 'minute' : step === '1h' ? 'hour' : 'day'}; drag across the chart to zoom.`;
    document.body.dataset.hist = String(j.counts.length);
  }
  function drawHist() {
    const c = $('hist');
    const w = c.parentElement.clientWidth;
    const dpr = window.devicePixelRatio || 1;
    c.width = w * dpr;
    c.height = 120 * dpr;
    c.style.width = w + 'px';
    const g = c.getContext('2d');
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, 120);
    if (!hist) return;
    const pad = { l: 48, r: 8, t: 8, b: 20 };
    const max = Math.max(1, ...hist.counts);
    const span = hist.to - hist.from;
    const x = (t) => pad.l + (t - hist.from) / span * (w - pad.l - pad.r);
    const H = 120 - pad.t - pad.b;
    g.fillStyle = '#3d7bd9';
    hist.counts.forEach((n, i) => {
      if (!n) return;
      const t0 = Math.max(hist.start + i * hist.step, hist.from), t1 = Math.min(hist.start + (i + 1) * hist.step, hist.to);
      const x0 = x(t0), x1 = x(t1);
      const h = n / max * H;
      g.fillRect(x0, pad.t + H - h, Math.max(1, x1 - x0 - (x1 - x0 > 3 ? 1 : 0)), h);
    });
    g.fillStyle = '#667';
    g.font = '11px system-ui, sans-serif';
    g.fillText(fmtNum(max), 4, pad.t + 10);
    g.fillText('0', 4, pad.t + H);
    g.strokeStyle = '#ccd';
    g.beginPath(); g.moveTo(pad.l, pad.t + H + 0.5); g.lineTo(w - pad.r, pad.t + H + 0.5); g.stroke();
    const ticks = 6;
    for (let k = 0; k <= ticks; k++) {
      const t = hist.from + span * k / ticks;
      const d = new Date(t);
      const lab = span > 14 * 86400e3 ? fmtDay(d) : d.toISOString().slice(5, 16).replace('T', ' ');
      const tx = x(t);
      g.fillText(lab, Math.min(Math.max(tx - 30, pad.l), w - 70), 116);
    }
    hist.x = x;
    hist.pad = pad;
    hist.w = w;
  }
  function wireHistogram() {
    const c = $('hist'), sel = $('histSel');
    let startX = null;
    const tAt = (px) => hist.from + (px - hist.pad.l) / (hist.w - hist.pad.l - hist.pad.r) * (hist.to - hist.from);
    c.addEventListener('mousedown', (ev) => { if (!hist) return; startX = ev.offsetX; sel.hidden = false; sel.style.left = startX + 'px'; sel.style.width = '0px'; });
    c.addEventListener('mousemove', (ev) => {
      if (startX === null) return;
      const a = Math.min(startX, ev.offsetX), b = Math.max(startX, ev.offsetX);
      sel.style.left = a + 'px';
      sel.style.width = (b - a) + 'px';
    });
    const end = (ev) => {
      if (startX === null) return;
      const a = Math.min(startX, ev.offsetX), b = Math.max(startX, ev.offsetX);
      startX = null;
      sel.hidden = true;
      if (b - a < 4) return;
      const from = Math.max(tAt(a), hist.from), to = Math.min(tAt(b), hist.to);
      st.from = new Date(Math.floor(from / 1000) * 1000).toISOString();
      st.to = new Date(Math.ceil(to / 1000) * 1000).toISOString();
      runSearch();
    };
    c.addEventListener('mouseup', end);
    c.addEventListener('mouseleave', (ev) => { if (startX !== null) end(ev); });
  }

  // ---- completion --------------------------------------------------------
  let compItems = [], compIdx = 0;
  function hideComplete() { $('complete').hidden = true; compItems = []; }
  function currentToken() {
    const q = $('q');
    const pos = q.selectionStart;
    const before = q.value.slice(0, pos);
    const m = /(^|\s)(-?)([^\s]*)$/.exec(before);
    return { start: pos - m[3].length, text: m[3], pos };
  }
  function wireComplete() {
    const q = $('q');
    q.addEventListener('input', updateComplete);
    q.addEventListener('focus', updateComplete);
    q.addEventListener('blur', () => setTimeout(hideComplete, 150));
    q.addEventListener('keydown', (ev) => {
      if ($('complete').hidden || !compItems.length) return;
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        compIdx = (compIdx + (ev.key === 'ArrowDown' ? 1 : compItems.length - 1)) % compItems.length;
        paintComplete();
      } else if (ev.key === 'Tab' || (ev.key === 'Enter' && compItems[compIdx].pick)) {
        ev.preventDefault();
        accept(compItems[compIdx]);
      }
    });
  }
  function updateComplete() {
    const tok = currentToken();
    const items = [];
    const sep = tok.text.search(/[:~]/);
    if (sep < 0) {
      for (const f of FIELDS) if (f.f.startsWith(tok.text.toLowerCase())) items.push({ text: f.f, help: f.help, pick: true });
    } else {
      const field = tok.text.slice(0, sep).toLowerCase(), val = tok.text.slice(sep + 1);
      const by = { ip: 'ip', domain: 'domain', path: 'path', ua: 'user_agent' }[field];
      for (const b of (st.top[by] || [])) {
        const v = by === 'ip' || by === 'domain' ? b.key : quoteValue(b.key.replace(/\*/g, ''));
        if (v.toLowerCase().includes(val.toLowerCase().replace(/^"/, '')) && tok.text[sep] === ':') items.push({ text: field + ':' + v, help: fmtNum(b.count) + ' in the current result', pick: true });
        if (items.length >= 8) break;
      }
    }
    compItems = items;
    compIdx = 0;
    if (!items.length || (items.length === 1 && items[0].text === tok.text)) { hideComplete(); return; }
    paintComplete();
  }
  function paintComplete() {
    const ul = $('complete');
    ul.replaceChildren();
    compItems.forEach((it, i) => {
      const li = el('li', null, i === compIdx ? 'on' : '');
      li.append(el('code', it.text), el('span', it.help, 'hint'));
      li.addEventListener('mousedown', (ev) => { ev.preventDefault(); accept(it); });
      ul.append(li);
    });
    ul.hidden = false;
  }
  function accept(it) {
    const q = $('q');
    const tok = currentToken();
    q.value = q.value.slice(0, tok.start) + it.text + q.value.slice(tok.pos);
    const p = tok.start + it.text.length;
    q.setSelectionRange(p, p);
    hideComplete();
    q.focus();
  }

  // ---- exports -------------------------------------------------------------
  function download(blob, name) {
    const a = el('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60e3);
  }
  const stamp = () => new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const safe = (s) => s.replace(/[^A-Za-z0-9._-]+/g, '_');
  async function sha256hex(buf) {
    const d = await crypto.subtle.digest('SHA-256', buf);
    return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, '0')).join('');
  }
  async function exportFile(format) {
    const s = $('exportStatus');
    s.textContent = `Exporting every matching record as ${format.toUpperCase()}…`;
    try {
      const r = await call('/api/v1/search', audited({ limit: 0, format }));
      const blob = await r.blob();
      const name = `retentiond-${safe(st.caseId)}-${stamp()}.${format}`;
      download(blob, name);
      s.textContent = `${name}: ${fmtNum(blob.size)} bytes, SHA-256 ${await sha256hex(await blob.arrayBuffer())}`;
      document.body.dataset.exported = name;
    } catch (e) { s.textContent = 'Export failed: ' + e.message; }
  }
  async function exportBundle() {
    const s = $('exportStatus');
    s.textContent = 'Building the signed evidence bundle of every matching record…';
    try {
      const r = await call('/api/v1/evidence', audited());
      const blob = await r.blob();
      const cd = r.headers.get('Content-Disposition') || '';
      const name = (/filename="([^"]+)"/.exec(cd) || [, `evidence-${safe(st.caseId)}-${stamp()}.zip`])[1];
      download(blob, name);
      s.textContent = `${name}: ${fmtNum(blob.size)} bytes, SHA-256 ${await sha256hex(await blob.arrayBuffer())}. Check it with: retentiond evidence verify ${name}`;
      document.body.dataset.bundle = name;
    } catch (e) { s.textContent = 'Evidence bundle failed: ' + e.message; }
  }

  // ---- case history, audit log, retention ----------------------------------
  function fillTable(tbody, rows) {
    tbody.replaceChildren();
    for (const cells of rows) {
      const tr = el('tr');
      for (const c of cells) tr.append(el('td', c ?? ''));
      tbody.append(tr);
    }
  }
  async function loadHistory() {
    const tb = $('historyTable').tBodies[0];
    try {
      const j = await getJSON('/api/v1/audit/case', { case: st.caseId });
      const done = {};
      for (const l of j.lines) if (l.ref) done[l.ref] = l;
      fillTable(tb, j.lines.filter((l) => l.outcome !== 'done' && l.outcome !== 'error').reverse().map((l) => {
        const d = done[l.seq];
        return [l.seq, l.time.replace('T', ' '), d ? d.outcome : l.outcome, l.endpoint + (l.params ? ' ' + l.params : ''), l.token || l.source, l.query, l.from, l.to, d && d.count !== undefined ? fmtNum(d.count) : ''];
      }));
    } catch (e) { fillTable(tb, [['', 'Error: ' + e.message]]); }
  }
  async function loadAudit() {
    const tb = $('auditTable').tBodies[0];
    try {
      const j = await getJSON('/api/v1/admin/audit', { limit: 500 });
      const v = j.verify;
      const p = $('auditStatus');
      p.className = v.ok ? 'ok' : 'error';
      p.textContent = v.ok ? `Chain verified: ${fmtNum(v.lines_verified)} lines in ${v.files} file(s), head seq ${v.head_seq}${v.anchored ? ' (starts at a purge anchor)' : ''}.`
        : `Chain BROKEN at ${v.first_bad}. Lines after it cannot be trusted.`;
      fillTable(tb, j.lines.reverse().map((l) => [l.seq, l.time.replace('T', ' '), l.event, l.outcome, l.endpoint, l.token || l.source, l.case, l.reason, l.query, l.count !== undefined ? fmtNum(l.count) : '']));
    } catch (e) { fillTable(tb, [['', 'Error: ' + e.message]]); }
  }
  async function loadRetention() {
    try {
      const j = await getJSON('/api/v1/admin/retention');
      const dl = $('retNumbers');
      dl.replaceChildren();
      const add = (k, v) => { dl.append(el('dt', k), el('dd', v)); };
      const t = (s) => (s ? s.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—');
      add('Retention', j.retention);
      add('Cutoff', `${t(j.cutoff)} (older records destroyed on schedule)`);
      add('Days stored', fmtNum(j.days_stored));
      add('Records', fmtNum(j.records));
      add('Bytes on disk', fmtNum(j.bytes));
      add('Oldest record', t(j.oldest_record));
      add('Next expiry', t(j.next_expiry));
      add('Next scheduled purge', `${t(j.next_run)} (${j.schedule})`);
      const lr = j.last_run;
      add('Last purge', lr ? `${t(lr.now)}: ${lr.result}, ${lr.days.length} day(s), ${fmtNum(lr.records)} records destroyed` : 'none since the daemon started');
      $('retLast').textContent = lr ? JSON.stringify(lr, null, 2) : '';
      drawRetention(j.days);
    } catch (e) { $('retLast').textContent = 'Error: ' + e.message; }
  }
  function drawRetention(days) {
    const c = $('retChart');
    const w = c.parentElement.clientWidth, dpr = window.devicePixelRatio || 1;
    c.width = w * dpr; c.height = 140 * dpr; c.style.width = w + 'px';
    const g = c.getContext('2d');
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, 140);
    if (!days.length) return;
    const max = Math.max(1, ...days.map((d) => d.records));
    const bw = (w - 60) / days.length;
    g.fillStyle = '#3d7bd9';
    days.forEach((d, i) => { const h = d.records / max * 110; g.fillRect(50 + i * bw, 118 - h, Math.max(1, bw - 1), h); });
    g.fillStyle = '#667';
    g.font = '11px system-ui, sans-serif';
    g.fillText(fmtNum(max), 2, 14);
    g.fillText(days[0].day, 50, 134);
    const last = days[days.length - 1].day;
    g.fillText(last, w - 70, 134);
  }

  document.addEventListener('DOMContentLoaded', boot);
})();
