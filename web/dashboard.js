// The tproxy dashboard: plain DOM, no dependencies. Everything the server sends is shown through
// textContent (never parsed as HTML): names come from SNI and Host headers, that is from anyone.
// The flow table renders only the rows in view, so 10,000 flows in progress stay cheap.

const ROW_HEIGHT = 22;
const $ = (id) => document.getElementById(id);

const state = {
  flows: new Map(),
  history: [],
  status: undefined,
  /** Whether the gateway should get new flows: { ready, drained, reasons }. */
  readiness: undefined,
  /** Per listener: active and accepted flows, from each second's sample. */
  live: undefined,
  readOnly: true,
  untracked: 0,
  filter: '',
  sort: { key: 'startedAt', asc: false },
  /** The flows filtered and sorted, recomputed when something changed. */
  view: [],
  dirty: true,
  scheduled: false,
};

const fmtBytes = (n) => {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
};

const fmtAge = (ms) => {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}`;
};

function cell(text, className) {
  const span = document.createElement('span');
  span.textContent = text;
  if (className) span.className = className;
  return span;
}

function tableRows(tbody, rows) {
  tbody.replaceChildren(
    ...rows.map((cells) => {
      const tr = document.createElement('tr');
      for (const c of cells) {
        const td = document.createElement('td');
        td.textContent = String(c);
        tr.append(td);
      }
      return tr;
    }),
  );
}

function schedule() {
  if (state.scheduled) return;
  state.scheduled = true;
  requestAnimationFrame(() => {
    state.scheduled = false;
    renderFlows();
  });
}

// ---- flows -------------------------------------------------------------------------------------

function matches(flow, filter) {
  if (filter === '') return true;
  return [flow.transport, flow.listener, flow.client, flow.originalDestination, flow.name, flow.route, flow.outbound, flow.backend, flow.balancer].some((v) => v !== undefined && String(v).toLowerCase().includes(filter));
}

function recompute() {
  const { key, asc } = state.sort;
  const filter = state.filter;
  const view = [];
  for (const f of state.flows.values()) if (matches(f, filter)) view.push(f);
  view.sort((a, b) => {
    const x = a[key] ?? '';
    const y = b[key] ?? '';
    const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
    return asc ? c : -c;
  });
  state.view = view;
  state.dirty = false;
}

function flowRow(flow, now) {
  const row = document.createElement('div');
  row.className = 'row flow';
  row.dataset.key = flow.key;
  row.dataset.up = String(flow.bytesFromClient);
  row.dataset.down = String(flow.bytesFromServer);
  row.append(
    cell(flow.transport),
    cell(flow.listener),
    cell(flow.client),
    cell(flow.originalDestination, 'dest'),
    cell(flow.name ?? '', 'name'),
    // An mmproxy session has no route: it goes to its entry's backend.
    cell(flow.backend !== undefined ? 'mmproxy' : flow.route ?? '(default)'),
    cell(flow.backend !== undefined ? `backend ${flow.backend}` : flow.outbound ?? ''),
    cell(fmtBytes(flow.bytesFromClient), 'num up-bytes'),
    cell(fmtBytes(flow.bytesFromServer), 'num down-bytes'),
    cell(fmtAge(now - flow.startedAt), 'num'),
  );
  const actions = document.createElement('span');
  if (!state.readOnly) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'close';
    button.textContent = 'close';
    button.dataset.key = flow.key;
    actions.append(button);
  }
  row.append(actions);
  return row;
}

function renderFlows() {
  if (state.dirty) recompute();
  const viewport = $('flow-viewport');
  $('flow-spacer').style.height = `${state.view.length * ROW_HEIGHT}px`;
  const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - 5);
  const count = Math.ceil(viewport.clientHeight / ROW_HEIGHT) + 10;
  const now = Date.now();
  const rows = $('flow-rows');
  rows.style.top = `${first * ROW_HEIGHT}px`;
  rows.replaceChildren(...state.view.slice(first, first + count).map((f) => flowRow(f, now)));
  const shown = state.view.length === state.flows.size ? `${state.flows.size}` : `${state.view.length} of ${state.flows.size}`;
  $('flow-count').textContent = `(${shown}${state.untracked > 0 ? `; ${state.untracked} not tracked: table full` : ''})`;
}

function applyChanges(changes) {
  for (const c of changes) {
    if (c.op === 'add') state.flows.set(c.flow.key, c.flow);
    else if (c.op === 'update') {
      const f = state.flows.get(c.key);
      if (f) Object.assign(f, c.fields);
    } else if (c.op === 'remove') state.flows.delete(c.key);
  }
  state.dirty = true;
  schedule();
}

// ---- listeners, rules, chart -------------------------------------------------------------------

/** The listener's figures of the last second's sample (the status is read less often). */
const live = (name) => state.live?.find((l) => l.name === name);

function renderStatus() {
  const s = state.status;
  if (!s) return;
  $('daemon').textContent = `pid ${s.pid} · ${s.version} · ${s.engine} · ${s.state}`;
  tableRows(
    $('listeners').tBodies[0],
    s.listeners.map((l) => [
      l.name,
      l.sockets.map((k) => `${k.transport} ${k.family === 6 ? `[${k.address}]` : k.address}:${k.port}`).join(', '),
      live(l.name)?.tcpActive ?? l.counters.tcp.active,
      live(l.name)?.tcpAccepted ?? l.counters.tcp.accepted,
      live(l.name)?.udpActive ?? (l.counters.udp ? l.counters.udp.sessionsActive : '-'),
      l.workers.pids.length,
    ]),
  );
  const rules = s.rules;
  if (!rules.managed) {
    $('rules-state').textContent = '(not managed by this daemon)';
    tableRows($('rules').tBodies[0], []);
  } else if ('error' in rules) {
    $('rules-state').textContent = `(could not be read: ${rules.error})`;
  } else {
    $('rules-state').textContent = `(${rules.backend}, ${rules.inPlace ? 'in place' : 'NOT in place'})`;
    tableRows(
      $('rules').tBodies[0],
      rules.pieces.map((p) => [p.name, p.state, p.counter ? p.counter.packets : '', p.counter ? fmtBytes(p.counter.bytes) : '']),
    );
  }
}

function renderChart() {
  const samples = state.history.slice(-300);
  const width = 600;
  const height = 160;
  const maxBytes = Math.max(1, ...samples.map((s) => Math.max(s.bytesFromClientPerSecond, s.bytesFromServerPerSecond)));
  const maxNew = Math.max(1, ...samples.map((s) => s.newFlowsPerSecond));
  const step = width / Math.max(1, 300 - 1);
  const x0 = width - (samples.length - 1) * step;
  const points = (value, max) => samples.map((s, i) => `${(x0 + i * step).toFixed(1)},${(height - 4 - (value(s) / max) * (height - 8)).toFixed(1)}`).join(' ');
  $('line-up').setAttribute('points', points((s) => s.bytesFromClientPerSecond, maxBytes));
  $('line-down').setAttribute('points', points((s) => s.bytesFromServerPerSecond, maxBytes));
  $('line-new').setAttribute('points', points((s) => s.newFlowsPerSecond, maxNew));
  const last = samples[samples.length - 1];
  $('chart-scale').textContent = last
    ? `now ${fmtBytes(last.bytesFromClientPerSecond)}/s up, ${fmtBytes(last.bytesFromServerPerSecond)}/s down, ${last.newFlowsPerSecond} new flows/s · scale ${fmtBytes(maxBytes)}/s, ${maxNew} flows/s · last ${samples.length} s`
    : 'no samples yet';
}

function renderReadiness() {
  const r = state.readiness;
  if (!r) return;
  $('readiness').textContent = r.ready ? 'ready' : r.drained ? 'drained' : 'not ready';
  $('readiness').className = r.ready ? 'good' : 'bad';
  $('readiness-panel').hidden = r.ready;
  $('readiness-reasons').replaceChildren(
    ...r.reasons.map((reason) => {
      const li = document.createElement('li');
      li.textContent = reason;
      return li;
    }),
  );
  // Drain takes the gateway out of service (readiness says no, flows go on); undrain puts it back.
  $('drain').textContent = r.drained ? 'undrain' : 'drain';
  $('drain').dataset.drained = String(r.drained);
}

function setMode() {
  $('mode').textContent = state.readOnly ? 'read-only (no dashboard.token configured)' : 'actions need the token';
  $('token-label').hidden = state.readOnly;
  $('reload').hidden = state.readOnly;
  $('drain').hidden = state.readOnly;
}

// ---- the event stream --------------------------------------------------------------------------

function connect() {
  const source = new EventSource('/api/events');
  source.addEventListener('open', () => {
    $('connection').textContent = 'live';
    $('connection').className = 'good';
  });
  source.addEventListener('error', () => {
    $('connection').textContent = 'disconnected (retrying)';
    $('connection').className = 'bad';
  });
  source.addEventListener('state', (e) => {
    const s = JSON.parse(e.data);
    state.flows = new Map(s.flows.map((f) => [f.key, f]));
    state.history = s.history;
    state.status = s.status;
    state.readiness = s.readiness;
    state.readOnly = s.readOnly;
    state.untracked = s.untracked;
    state.dirty = true;
    setMode();
    renderStatus();
    renderReadiness();
    renderChart();
    schedule();
  });
  source.addEventListener('flows', (e) => applyChanges(JSON.parse(e.data)));
  source.addEventListener('sample', (e) => {
    const sample = JSON.parse(e.data);
    state.history.push(sample);
    if (state.history.length > 600) state.history.shift();
    state.untracked = sample.untracked ?? state.untracked;
    state.live = sample.listeners;
    renderStatus();
    renderChart();
    // Ages move on.
    schedule();
  });
  source.addEventListener('status', (e) => {
    state.status = JSON.parse(e.data);
    renderStatus();
  });
  source.addEventListener('readiness', (e) => {
    state.readiness = JSON.parse(e.data);
    renderReadiness();
  });
}

// ---- actions -----------------------------------------------------------------------------------

async function post(path, body, withToken) {
  const headers = { 'content-type': 'application/json' };
  if (withToken && $('token').value !== '') headers['x-tproxy-token'] = $('token').value;
  const response = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body) });
  const answer = await response.json().catch(() => ({ ok: false, error: `HTTP ${response.status}` }));
  return { status: response.status, ...answer };
}

function showResult(text, ok) {
  const el = $('action-result');
  el.textContent = text;
  el.className = ok ? 'good' : 'bad';
}

$('flow-rows').addEventListener('click', (e) => {
  const target = e.target;
  if (!(target instanceof HTMLElement)) return;
  const button = target.closest('button.close');
  if (button) {
    const key = button.dataset.key;
    void post('/api/flows/close', { key }, true).then((r) => showResult(r.ok ? `closed ${key}` : `not closed: ${r.error}`, r.ok));
    return;
  }
  const row = target.closest('.row.flow');
  const flow = row && state.flows.get(row.dataset.key);
  // An mmproxy session came from a balancer, not through the TPROXY rules: nothing to explain.
  if (!flow || flow.backend !== undefined) return;
  // The flow's first packet, as tproxy explain reads it.
  $('explain-packet').value = `${flow.transport} ${flow.client} -> ${flow.originalDestination}${flow.transport === 'tcp' ? ' syn' : ''}`;
  $('explain-sni').value = flow.name ?? '';
  $('explain-listener').value = flow.listener;
  $('explain-form').requestSubmit();
});

$('reload').addEventListener('click', () => {
  void post('/api/reload', {}, true).then((r) => showResult(r.ok ? 'configuration reloaded' : `reload: ${r.error}`, r.ok));
});

$('drain').addEventListener('click', () => {
  const undrain = $('drain').dataset.drained === 'true';
  void post(undrain ? '/api/undrain' : '/api/drain', {}, true).then((r) => {
    if (r.ok) {
      state.readiness = r.readiness;
      renderReadiness();
    }
    showResult(r.ok ? (undrain ? 'in service again' : 'drained: not ready, flows go on') : `${undrain ? 'undrain' : 'drain'}: ${r.error}`, r.ok);
  });
});

$('explain-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const out = $('explain-output');
  out.textContent = 'explaining…';
  const body = { packet: $('explain-packet').value };
  if ($('explain-sni').value !== '') body.sni = $('explain-sni').value;
  if ($('explain-listener').value !== '') body.listener = $('explain-listener').value;
  void post('/api/explain', body, false).then((r) => {
    out.textContent = r.ok ? r.text : `error: ${r.error}`;
    out.dataset.outcome = r.ok ? String(r.json.outcome) : 'error';
    out.dataset.json = r.ok ? JSON.stringify(r.json) : '';
  });
});

$('filter').addEventListener('input', (e) => {
  state.filter = e.target.value.trim().toLowerCase();
  state.dirty = true;
  $('flow-viewport').scrollTop = 0;
  schedule();
});

$('flow-head').addEventListener('click', (e) => {
  const key = e.target instanceof HTMLElement ? e.target.dataset.sort : undefined;
  if (!key) return;
  state.sort = state.sort.key === key ? { key, asc: !state.sort.asc } : { key, asc: key !== 'startedAt' && !key.startsWith('bytes') };
  for (const el of $('flow-head').querySelectorAll('[data-sort]')) {
    el.classList.toggle('sorted', el.dataset.sort === key);
    el.classList.toggle('asc', el.dataset.sort === key && state.sort.asc);
  }
  state.dirty = true;
  schedule();
});

$('flow-viewport').addEventListener('scroll', schedule, { passive: true });

connect();
