// The flatmesh dashboard page: reads the run's events (GET /api/events, Server-Sent Events: the
// whole run so far, then live), draws the node grid, the topology with this round's message fates,
// the curves (uPlot) and the fault list, and sends control actions (POST /api/control with the
// token from the page's URL). Plain browser JavaScript, no build step.

const token = new URLSearchParams(location.search).get('token') ?? '';
const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';

const S = {
  run: null,
  info: { readonly: true, replay: false },
  nodes: [],
  faults: [],
  livePartitions: [],
  liveByzantine: [],
  maxRound: -1,
  view: -1,
  follow: true,
  selected: null,
  finished: false,
  agg: [],
  dirty: false,
  charts: null,
};

function newNode(id) {
  return {
    id,
    state: 'starting',
    pid: null,
    records: new Map(),
    latest: null,
    acc: null,
    swa: null,
  };
}

function reset() {
  S.run = null;
  S.nodes = [];
  S.faults = [];
  S.livePartitions = [];
  S.liveByzantine = [];
  S.maxRound = -1;
  S.agg = [];
  S.finished = false;
  $('faults').replaceChildren();
  $('nodes').replaceChildren();
  $('topology').replaceChildren();
}

// ---- events -----------------------------------------------------------------------------------

function onEvent(e) {
  switch (e.type) {
    case 'run':
      S.run = e;
      S.nodes = Array.from({ length: e.nodes }, (_, i) => newNode(i));
      for (const p of e.planned?.partitions ?? []) {
        addFault(
          p.from,
          'plan',
          `partition ${groupsText(p.groups)} for rounds ${p.from}-${p.to - 1}`,
        );
      }
      for (const b of e.planned?.byzantine ?? []) {
        addFault(0, 'plan', `node ${b.node} byzantine (${b.behaviour})`);
      }
      for (const s of e.planned?.stragglers ?? []) {
        addFault(0, 'plan', `node ${s.node} straggler ×${s.factor}`);
      }
      if ((e.planned?.loss?.p ?? 0) > 0)
        addFault(0, 'plan', `loss p=${e.planned.loss.p} on every link`);
      buildNodes();
      buildTopology();
      buildNetworkControls();
      break;
    case 'node': {
      const n = S.nodes[e.node];
      if (!n) return;
      n.state = e.state;
      if (e.pid !== undefined) n.pid = e.pid;
      break;
    }
    case 'round': {
      const r = e.record;
      const n = S.nodes[r.node];
      if (!n) return;
      n.records.set(r.round, r);
      if (!n.latest || r.round >= n.latest.round) n.latest = r;
      if (r.accuracy !== undefined) n.acc = r.accuracy;
      if (r.swaAccuracy !== undefined) n.swa = r.swaAccuracy;
      if (n.state === 'starting' || n.state === 'restarting') n.state = 'training';
      else if (n.state === 'exchanging') n.state = 'training';
      aggregate(r);
      S.maxRound = Math.max(S.maxRound, r.round);
      break;
    }
    case 'fault':
      onFault(e);
      break;
    case 'process': {
      // A node process died or was restarted: planned, by hand, or not planned at all.
      const p = e.event;
      const what = p.kind === 'crash' ? 'died' : p.kind === 'restart' ? 'restarted' : p.kind;
      const source = p.planned ? (p.detail === 'by hand' ? 'live' : 'plan') : 'unplanned';
      const detail = p.detail && p.detail !== 'by hand' ? ` (${p.detail})` : '';
      addFault(p.round, source, `node ${p.node} process ${what}${detail}`);
      break;
    }
    case 'summary':
      S.finished = true;
      break;
    default:
      break;
  }
  S.dirty = true;
}

function onFault(e) {
  const a = e.action;
  if (e.applied?.kind === 'partition') S.livePartitions.push(e.applied);
  if (e.applied?.kind === 'byzantine') S.liveByzantine.push(e.applied);
  addFault(e.round, e.source, describe(a, e));
}

function describe(a, e) {
  switch (a.kind) {
    case 'kill': {
      const when =
        a.restart === 'after' ? `restart after ${a.afterRounds} rounds` : `restart ${a.restart}`;
      return `kill -9 node ${a.node}${e.pid ? ` (pid ${e.pid})` : ''}, ${when}`;
    }
    case 'restart':
      return `restart node ${a.node}`;
    case 'partition':
      return `partition ${groupsText(a.groups)} for ${a.rounds} rounds (from round ${e.round})`;
    case 'heal':
      return `heal the partition (from round ${e.round})`;
    case 'loss':
      return `loss p=${a.p} on ${a.link ? `link ${a.link.from}→${a.link.to}` : 'every link'} (from round ${e.round})`;
    case 'straggler':
      return `node ${a.node} straggler ×${a.factor} (from round ${e.round})`;
    case 'byzantine':
      return `node ${a.node} ${a.behaviour === 'honest' ? 'honest again' : `byzantine (${a.behaviour})`} (from round ${e.round})`;
    default:
      return JSON.stringify(a);
  }
}

const groupsText = (gs) => gs.map((g) => `[${g.join(',')}]`).join(' | ');

function addFault(round, source, text) {
  S.faults.push({ round, source, text });
  const li = document.createElement('li');
  li.className = source === 'live' ? 'live' : '';
  li.textContent = `round ${round < 0 ? '-' : round} · ${source} · ${text}`;
  $('faults').append(li);
}

function aggregate(r) {
  if (!S.agg[r.round]) {
    S.agg[r.round] = {
      accS: 0,
      accN: 0,
      swaS: 0,
      swaN: 0,
      disS: 0,
      disN: 0,
      del: 0,
      drop: 0,
      miss: 0,
    };
  }
  const a = S.agg[r.round];
  if (r.accuracy !== undefined) {
    a.accS += r.accuracy;
    a.accN++;
  }
  if (r.swaAccuracy !== undefined) {
    a.swaS += r.swaAccuracy;
    a.swaN++;
  }
  if (r.disagreement !== null && r.disagreement !== undefined) {
    a.disS += r.disagreement;
    a.disN++;
  }
  a.del += r.messages.delivered;
  a.drop += r.messages.dropped;
  a.miss += r.messages.missing + r.messages.failed;
}

// ---- faults in force ----------------------------------------------------------------------------

function partitionAt(round) {
  const planned = (S.run?.planned?.partitions ?? []).find((p) => round >= p.from && round < p.to);
  if (planned) return planned.groups;
  let live;
  for (const p of S.livePartitions) if (round >= p.from && round < p.to) live = p;
  return live && live.groups.length > 1 ? live.groups : undefined;
}

function cut(groups, a, b) {
  return groups.findIndex((g) => g.includes(a)) !== groups.findIndex((g) => g.includes(b));
}

function byzantineAt(node, round) {
  let b = (S.run?.planned?.byzantine ?? []).find((x) => x.node === node);
  for (const f of S.liveByzantine) if (f.node === node && round >= f.from) b = f;
  return b && b.behaviour !== 'honest' ? b : undefined;
}

/** What a node shows at the viewed round: its process state, or the fault that marks it. */
function shownState(n, round) {
  let s = n.state;
  if (!S.follow) {
    if (n.records.has(round)) s = 'training';
    else if (n.latest && n.latest.round > round) s = 'crashed';
  }
  if (s !== 'training' && s !== 'exchanging') return s;
  if (byzantineAt(n.id, round)) return 'byzantine';
  const g = partitionAt(round);
  if (g && S.nodes.some((m) => cut(g, n.id, m.id))) return 'partitioned';
  return s;
}

// ---- drawing ------------------------------------------------------------------------------------

function buildNodes() {
  const box = $('nodes');
  box.replaceChildren();
  for (const n of S.nodes) {
    const d = document.createElement('div');
    d.className = 'node';
    d.dataset.node = String(n.id);
    d.innerHTML = `<div class="title"><span>node ${n.id}</span><span class="state"></span></div>
      <div class="round"></div><div class="acc"></div><div class="rss"></div>`;
    d.addEventListener('click', () => select(n.id));
    box.append(d);
  }
}

function pos(i) {
  const n = S.nodes.length;
  const t = (2 * Math.PI * i) / n - Math.PI / 2;
  return [Math.cos(t), Math.sin(t)];
}

function buildTopology() {
  const svg = $('topology');
  svg.replaceChildren();
  const edges = document.createElementNS(SVG, 'g');
  edges.id = 'edges';
  for (const [a, b] of S.run.edges) {
    const l = document.createElementNS(SVG, 'line');
    const [x1, y1] = pos(a);
    const [x2, y2] = pos(b);
    l.setAttribute('x1', x1);
    l.setAttribute('y1', y1);
    l.setAttribute('x2', x2);
    l.setAttribute('y2', y2);
    l.setAttribute('class', 'edge idle');
    l.dataset.edge = `${a}-${b}`;
    edges.append(l);
  }
  svg.append(edges);
  for (const n of S.nodes) {
    const [x, y] = pos(n.id);
    const c = document.createElementNS(SVG, 'circle');
    c.setAttribute('cx', x);
    c.setAttribute('cy', y);
    c.setAttribute('r', 0.11);
    c.dataset.node = String(n.id);
    c.addEventListener('click', () => select(n.id));
    const t = document.createElementNS(SVG, 'text');
    t.setAttribute('x', x);
    t.setAttribute('y', y);
    t.textContent = String(n.id);
    svg.append(c, t);
  }
}

/** The fate of an edge at a round: idle, ok, dropped, cut or failed (the worst direction). */
function edgeFate(a, b, round) {
  const ra = S.nodes[a]?.records.get(round);
  const rb = S.nodes[b]?.records.get(round);
  const active = ra?.neighbours.includes(b) || rb?.neighbours.includes(a);
  if (!active) return 'idle';
  const g = partitionAt(round);
  if (g && cut(g, a, b)) return 'cut';
  const rank = { ok: 0, failed: 1, dropped: 2 };
  let worst = 'ok';
  const see = (from, to, rf, rt) => {
    const s = rf?.byNeighbour?.[to];
    const r = rt?.byNeighbour?.[from];
    let f = 'ok';
    if (!rf || !rt) f = 'failed';
    else if (s?.dropped > 0 || r?.lost > 0) f = 'dropped';
    else if (s?.failed > 0 || r?.missing > 0) f = 'failed';
    if (rank[f] > rank[worst]) worst = f;
  };
  see(a, b, ra, rb);
  see(b, a, rb, ra);
  return worst;
}

/** The newest round every node that ran has finished (where a replay opens). */
function lastCommonRound() {
  const ran = S.nodes.filter((n) => n.latest);
  return ran.length === 0 ? S.maxRound : Math.min(...ran.map((n) => n.latest.round));
}

/** A node's last evaluated accuracies at or before a round. */
function accuracyAt(n, round) {
  let acc = null;
  let swa = null;
  for (let r = round; r >= 0 && (acc === null || swa === null) && round - r < 100; r--) {
    const rec = n.records.get(r);
    if (acc === null && rec?.accuracy !== undefined) acc = rec.accuracy;
    if (swa === null && rec?.swaAccuracy !== undefined) swa = rec.swaAccuracy;
  }
  return { acc, swa };
}

/** The newest round every running node has finished (what the live view shows). */
function liveRound() {
  const running = S.nodes.filter(
    (n) => n.latest && (n.state === 'training' || n.state === 'exchanging'),
  );
  return running.length === 0 ? S.maxRound : Math.min(...running.map((n) => n.latest.round));
}

const fmt = (v, d = 3) => (v === null || v === undefined ? '–' : Number(v).toFixed(d));

function draw() {
  if (!S.run) return;
  if (S.follow) S.view = liveRound();
  const round = S.view;
  const slider = $('slider');
  slider.max = String(Math.max(0, S.maxRound));
  slider.value = String(Math.max(0, round));
  $('slider-round').textContent = `round ${Math.max(0, round)}`;
  $('run-id').textContent = S.run.runId;
  $('run-round').textContent = `round ${S.maxRound + 1}/${S.run.rounds}`;
  $('run-status').textContent = S.info.replay ? 'replay' : S.finished ? 'finished' : 'live';
  $('topology-round').textContent = `round ${Math.max(0, round)}`;

  for (const n of S.nodes) {
    const d = document.querySelector(`.node[data-node="${n.id}"]`);
    if (!d) continue;
    const state = shownState(n, round);
    const r = S.follow ? n.latest : (n.records.get(round) ?? null);
    d.dataset.state = state;
    d.dataset.round = r ? String(r.round) : '-1';
    d.querySelector('.state').textContent = state;
    d.querySelector('.round').textContent =
      `round ${r ? r.round : '–'}${n.pid ? ` · pid ${n.pid}` : ''}`;
    const { acc, swa } = S.follow ? n : accuracyAt(n, round);
    d.querySelector('.acc').textContent = `acc ${fmt(acc)} · swa ${fmt(swa)}`;
    d.querySelector('.rss').textContent = `RSS ${r ? `${Math.round(r.rssMB)} MB` : '–'}`;
    d.classList.toggle('selected', S.selected === n.id);
    const c = document.querySelector(`circle[data-node="${n.id}"]`);
    c?.setAttribute('class', `${state}${S.selected === n.id ? ' selected' : ''}`);
  }
  for (const l of document.querySelectorAll('#edges line')) {
    const [a, b] = l.dataset.edge.split('-').map(Number);
    const f = edgeFate(a, b, round);
    l.setAttribute('class', `edge ${f}`);
    l.dataset.fate = f;
  }
  drawCharts();
}

function series() {
  const xs = [];
  const acc = [];
  const swa = [];
  const dis = [];
  const del = [];
  const drop = [];
  const miss = [];
  for (let r = 0; r <= S.maxRound; r++) {
    const a = S.agg[r];
    xs.push(r);
    acc.push(a?.accN ? a.accS / a.accN : null);
    swa.push(a?.swaN ? a.swaS / a.swaN : null);
    dis.push(a?.disN ? a.disS / a.disN : null);
    del.push(a ? a.del : null);
    drop.push(a ? a.drop : null);
    miss.push(a ? a.miss : null);
  }
  return { xs, acc, swa, dis, del, drop, miss };
}

function chart(el, title, labels, colors) {
  const width = Math.max(300, el.clientWidth || 360);
  return new uPlot(
    {
      title,
      width,
      height: 150,
      scales: { x: { time: false } },
      axes: [{ label: 'round' }, {}],
      series: [
        {},
        ...labels.map((label, i) => ({ label, stroke: colors[i], width: 2, spanGaps: true })),
      ],
    },
    [[], ...labels.map(() => [])],
    el,
  );
}

function drawCharts() {
  if (typeof uPlot === 'undefined') return;
  if (!S.charts) {
    S.charts = {
      acc: chart(
        $('chart-acc'),
        'accuracy (mean over nodes)',
        ['model', 'SWA'],
        ['#3b7dd8', '#2e9e4f'],
      ),
      dis: chart(
        $('chart-dis'),
        'disagreement (mean RMS distance to neighbours heard)',
        ['disagreement'],
        ['#8e44ad'],
      ),
      msg: chart(
        $('chart-msg'),
        'messages per round',
        ['delivered', 'dropped', 'failed / missing'],
        ['#2e9e4f', '#d64541', '#e67e22'],
      ),
    };
  }
  const s = series();
  S.charts.acc.setData([s.xs, s.acc, s.swa]);
  S.charts.dis.setData([s.xs, s.dis]);
  S.charts.msg.setData([s.xs, s.del, s.drop, s.miss]);
}

// ---- selection, logs and controls ----------------------------------------------------------------

let logTimer;
function select(id) {
  S.selected = id;
  $('selected-node').textContent = String(id);
  $('controls-node').hidden = S.info.readonly;
  clearInterval(logTimer);
  loadLog();
  logTimer = setInterval(loadLog, 2000);
  S.dirty = true;
}

async function loadLog() {
  if (S.selected === null) return;
  const res = await fetch(`/api/log?node=${S.selected}`);
  if (!res.ok) return;
  const body = await res.json();
  const pre = $('log');
  pre.textContent = body.lines.join('\n');
  pre.scrollTop = pre.scrollHeight;
}

async function control(action) {
  const out = $('control-result');
  const res = await fetch('/api/control', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-flatmesh-token': token },
    body: JSON.stringify(action),
  });
  const body = await res.json().catch(() => ({ error: res.statusText }));
  out.className = res.ok ? '' : 'error';
  out.textContent = res.ok
    ? `done: ${action.kind} (round ${body.event?.round ?? '?'})`
    : body.error;
}

function buildNetworkControls() {
  const groups = $('partition-groups');
  groups.replaceChildren();
  const link = $('loss-link');
  link.replaceChildren(new Option('every link', ''));
  for (const n of S.nodes) {
    const l = document.createElement('label');
    const c = document.createElement('input');
    c.type = 'checkbox';
    c.value = String(n.id);
    c.dataset.group = 'a';
    c.checked = n.id < S.nodes.length / 2;
    l.append(c, ` ${n.id}`);
    groups.append(l);
  }
  for (const [a, b] of S.run.edges) {
    link.append(new Option(`${a}→${b}`, `${a}-${b}`), new Option(`${b}→${a}`, `${b}-${a}`));
  }
}

function wireControls() {
  const node = () => S.selected;
  $('kill').addEventListener('click', () => {
    const restart = $('kill-restart').value;
    const action = { kind: 'kill', node: node(), restart };
    if (restart === 'after') action.afterRounds = Number($('kill-after').value);
    control(action);
  });
  $('restart').addEventListener('click', () => control({ kind: 'restart', node: node() }));
  $('straggle').addEventListener('click', () =>
    control({ kind: 'straggler', node: node(), factor: Number($('straggle-factor').value) }),
  );
  $('byzantine').addEventListener('click', () =>
    control({ kind: 'byzantine', node: node(), behaviour: $('byzantine-behaviour').value }),
  );
  $('partition').addEventListener('click', () => {
    const a = [...document.querySelectorAll('#partition-groups input')];
    control({
      kind: 'partition',
      groups: [
        a.filter((c) => c.checked).map((c) => Number(c.value)),
        a.filter((c) => !c.checked).map((c) => Number(c.value)),
      ],
      rounds: Number($('partition-rounds').value),
    });
  });
  $('heal').addEventListener('click', () => control({ kind: 'heal' }));
  $('loss').addEventListener('click', () => {
    const v = $('loss-link').value;
    const action = { kind: 'loss', p: Number($('loss-p').value) };
    if (v) {
      const [from, to] = v.split('-').map(Number);
      action.link = { from, to };
    }
    control(action);
  });
  $('follow').addEventListener('change', (e) => {
    S.follow = e.target.checked;
    S.dirty = true;
  });
  $('slider').addEventListener('input', (e) => {
    S.follow = false;
    $('follow').checked = false;
    S.view = Number(e.target.value);
    S.dirty = true;
  });
}

async function start() {
  S.info = await (await fetch('/api/info')).json();
  $('readonly-badge').hidden = !S.info.readonly;
  $('network-panel').hidden = S.info.readonly;
  if (S.info.replay) {
    S.follow = false;
    $('follow').checked = false;
  }
  wireControls();
  const es = new EventSource('/api/events');
  // The server sends the whole run on every (re)connection.
  es.addEventListener('open', reset);
  es.addEventListener('message', (m) => {
    const e = JSON.parse(m.data);
    onEvent(e);
    // A finished launch closes its server: stop listening instead of retrying.
    if (e.type === 'summary' && !S.info.replay) es.close();
  });
  es.addEventListener('error', () => {
    if (es.readyState === EventSource.CLOSED) $('run-status').textContent = 'disconnected';
  });
  const tick = () => {
    if (S.dirty) {
      S.dirty = false;
      if (S.info.replay && S.view < 0) S.view = lastCommonRound();
      draw();
    }
    setTimeout(() => requestAnimationFrame(tick), 250);
  };
  tick();
}

start();
