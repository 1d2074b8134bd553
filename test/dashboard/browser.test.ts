/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core) over a real launch
 * of 6 node processes: the page shows the nodes advancing; "kill" on node 2 kills its process (its
 * pid is gone) and the page shows it crashed; "restart" brings it back from its checkpoint and the
 * page shows it rejoining; a partition made in the page shows cut edges, and healing it shows the
 * disagreement the two sides built up; the event log holds every action with its round; the page
 * logs no console error. Control requests without the token, with a wrong one, or from another
 * origin are refused and change nothing. Then `flatmesh watch` replays the finished run, read-only,
 * and the simulator replays the faults injected by hand (`flatmesh sim --replay`).
 *
 * Screenshots go to $FLATMESH_SCREENSHOTS (a directory) or to the run directory's screenshots/.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { launchDashboard } from '../../src/cli/dashboard.js';
import { watchCommand } from '../../src/cli/watch.js';
import { parseExperiment } from '../../src/config/index.js';
import type { RoundRecord } from '../../src/node/metrics.js';
import { type FaultEvent, readEventLog } from '../../src/run/events.js';
import { launch } from '../../src/run/launcher.js';
import { replayPlan } from '../../src/run/replay.js';
import { simulate } from '../../src/run/simulate.js';

const CHROMIUM = process.env.FLATMESH_CHROMIUM ?? '/usr/bin/chromium';
const NODES = 6;

/** Waits are long: the nodes share two cores with everything else running on the machine. */
async function until(
  pred: () => boolean | Promise<boolean>,
  what: string,
  ms = 180_000,
  failed: () => Error | undefined = () => undefined,
) {
  const end = Date.now() + ms;
  while (!(await pred())) {
    const e = failed();
    if (e) throw e;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Status of a raw HTTP request to the dashboard (headers as given, Host and Origin included). */
function request(
  base: string,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL('/api/control', base);
    const req = httpRequest(
      { host: u.hostname, port: u.port, path: u.pathname, method, headers },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('dashboard in chromium over a 6-process launch', () => {
  const out = mkdtempSync(join(tmpdir(), 'flatmesh-dashboard-'));
  const shots = process.env.FLATMESH_SCREENSHOTS ?? join(out, 'screenshots');
  const stop = new AbortController();
  const records: RoundRecord[] = [];
  const pids = new Map<number, number>();
  const consoleErrors: string[] = [];
  let browser: Browser;
  let page: Page;
  let url: string;
  let token: string;
  let run: Promise<unknown>;
  let closeDashboard: () => Promise<void>;
  /** The launch's error if it ended early (the waits below then fail at once with it). */
  let ended: Error | undefined;

  /** `until`, failing at once with the launch's error if the launch ended early. */
  const whileRunning = (pred: () => boolean | Promise<boolean>, what: string, ms = 180_000) =>
    until(pred, what, ms, () => ended);
  const shot = async (name: string) => {
    mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };
  const nodeAttr = (node: number, attr: string) =>
    page.getAttribute(`.node[data-node="${node}"]`, `data-${attr}`);
  const newestRound = () => Math.max(-1, ...records.map((r) => r.round));
  const liveFaults = () =>
    readEventLog(out).filter((e): e is FaultEvent => e.type === 'fault' && e.source === 'live');

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `no chromium at ${CHROMIUM} (.ci/run installs Debian's)`);
    const cfg = parseExperiment({
      nodes: NODES,
      run: { rounds: 100_000, seed: 7 },
      topology: { graph: 'ring', sampler: 'vanilla' },
      // Strongly non-IID: the two halves of a partition drift apart (seen in the simulator: the
      // largest disagreement at the heal is ~1.4x the one before the cut).
      data: { partition: 'dirichlet:0.1' },
      model: { hidden: [32] },
      train: { localSteps: 5, lr: 0.1, optimizer: 'sgd' },
      swa: { enabled: false },
      eval: { every: 2, limit: 200 },
      checkpoint: { every: 2 },
      gossip: { deadlineMs: 3000 },
      backend: 'wasm',
    });
    const dash = await launchDashboard({ print: () => {} });
    url = dash.dashboard.url;
    token = dash.dashboard.token;
    closeDashboard = dash.close;
    dash.events.on((e) => {
      if (e.type === 'round') records.push(e.record);
      if (e.type === 'node' && e.pid !== undefined) pids.set(e.node, e.pid);
    });
    run = launch(cfg, {
      out,
      progress: false,
      // Loading the nodes' code from source takes a while on a crowded machine.
      startTimeoutMs: 300_000,
      signal: stop.signal,
      events: dash.events,
      onControl: dash.onControl,
    }).catch((e: Error) => {
      ended = e;
      return e;
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 950 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(url);
  });

  after(async () => {
    await browser?.close();
    stop.abort();
    await run;
    await closeDashboard?.();
  });

  it('shows the 6 nodes advancing through rounds', async () => {
    await whileRunning(
      async () => (await page.locator('.node').count()) === NODES,
      'the node grid',
    );
    await whileRunning(
      async () => {
        for (let i = 0; i < NODES; i++) if (Number(await nodeAttr(i, 'round')) < 2) return false;
        return true;
      },
      'every node past round 2 on the page',
      400_000,
    );
    await whileRunning(
      async () => (await page.locator('#edges line.ok').count()) > 0,
      'delivered edges',
    );
    await shot('1-running');
  });

  it('refuses control requests without the token or from another origin, changing nothing', async () => {
    const pid = pids.get(2)!;
    const body = JSON.stringify({ kind: 'kill', node: 2, restart: 'never' });
    const json = { 'content-type': 'application/json' };
    assert.equal(await request(url, 'POST', json, body), 401);
    assert.equal(
      await request(url, 'POST', { ...json, 'x-flatmesh-token': 'f'.repeat(64) }, body),
      401,
    );
    const withToken = { ...json, 'x-flatmesh-token': token };
    assert.equal(
      await request(url, 'POST', { ...withToken, origin: 'http://evil.example' }, body),
      403,
    );
    // A form post from another page cannot set the JSON content type without a preflight.
    assert.equal(
      await request(url, 'POST', { 'content-type': 'text/plain', 'x-flatmesh-token': token }, body),
      415,
    );
    // DNS rebinding: a request naming another host is refused, even with the token.
    assert.equal(await request(url, 'POST', { ...withToken, host: 'evil.example' }, body), 421);
    // A page of another origin, in the browser itself, cannot post either.
    const other = await browser.newPage();
    await other.goto('about:blank');
    const status = await other.evaluate(
      async ([u, t, b]) => {
        try {
          const r = await fetch(u!, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-flatmesh-token': t! },
            body: b!,
          });
          return r.status;
        } catch {
          return 'blocked';
        }
      },
      [new URL('/api/control', url).href, token, body],
    );
    await other.close();
    assert.notEqual(status, 200);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(alive(pid), 'node 2 still runs');
    assert.deepEqual(liveFaults(), []);
  });

  it('kills node 2 from the page (its process is gone) and shows it crashed', async () => {
    const pid = pids.get(2)!;
    assert.ok(alive(pid));
    await page.click('.node[data-node="2"]');
    await page.selectOption('#kill-restart', 'never');
    await page.click('#kill');
    await whileRunning(() => !alive(pid), `pid ${pid} to be gone`, 30_000);
    await whileRunning(
      async () => (await nodeAttr(2, 'state')) === 'crashed',
      'node 2 shown crashed',
    );
    await shot('2-killed');
    const kill = liveFaults().find((e) => e.action.kind === 'kill');
    assert.ok(kill, 'the event log holds the kill');
    assert.equal(kill.pid, pid);
  });

  it('restarts node 2 from the page: it resumes from its checkpoint and rejoins', async () => {
    const before = newestRound();
    await page.click('#restart');
    await whileRunning(
      () => pids.get(2) !== undefined && alive(pids.get(2)!),
      'a new node 2 process',
    );
    await whileRunning(
      () => records.some((r) => r.node === 2 && r.round > before),
      'node 2 to finish a round after its restart',
    );
    await whileRunning(
      async () => (await nodeAttr(2, 'state')) === 'training',
      'node 2 shown training',
    );
    const log = readFileSync(join(out, 'nodes', '2', 'node.log'), 'utf8');
    assert.match(log, /resumed from checkpoint of round \d+/);
    // The page shows node 2's own log when it is clicked.
    await whileRunning(
      async () => /resumed from checkpoint/.test((await page.textContent('#log')) ?? ''),
      "node 2's log on the page",
      30_000,
    );
    await shot('3-rejoined');
  });

  it('partitions the graph from the page (cut edges), heals it, and disagreement rises', async () => {
    // Away from node 2's rejoin, whose stale model shows as a disagreement spike of its own.
    const rejoined = Math.max(...records.filter((r) => r.node === 2).map((r) => r.round));
    await whileRunning(
      () =>
        new Set(records.filter((r) => r.round >= rejoined + 5).map((r) => r.node)).size === NODES,
      'five rounds after the rejoin',
    );
    // Long enough that the heal below still finds it in force: a live action applies from a round
    // at least 2 s ahead (live-control.ts LEAD_MS), and on a quiet machine this small ring runs
    // rounds of ~50 ms, so 40 rounds could end before the heal's first round (which is refused).
    await page.fill('#partition-rounds', '5000');
    await page.click('#partition');
    await whileRunning(
      () => liveFaults().some((e) => e.action.kind === 'partition'),
      'partition logged',
    );
    const cutEvent = liveFaults().find((e) => e.action.kind === 'partition')!;
    const from = cutEvent.round;
    await whileRunning(
      async () => (await page.locator('#edges line.cut').count()) === 2,
      'the two ring edges across the groups shown cut',
    );
    assert.equal(await nodeAttr(0, 'state'), 'partitioned');
    await shot('4-partitioned');
    // Let the two halves drift apart for a few rounds, then heal.
    await whileRunning(
      () => records.filter((r) => r.round >= from + 10).length >= NODES,
      'cut rounds',
    );
    await page.click('#heal');
    await whileRunning(() => liveFaults().some((e) => e.action.kind === 'heal'), 'heal logged');
    const heal = liveFaults().find((e) => e.action.kind === 'heal')!.round;
    await whileRunning(
      () => new Set(records.filter((r) => r.round >= heal + 3).map((r) => r.node)).size === NODES,
      'every node past the heal',
    );
    await whileRunning(
      async () => (await page.locator('#edges line.cut').count()) === 0,
      'healed edges',
    );
    await shot('5-healed');

    // Largest distance any node measured to a neighbour it heard, per round.
    const worst = (round: number) =>
      Math.max(
        ...records
          .filter((r) => r.round === round && r.disagreement !== null)
          .map((r) => r.disagreement!),
      );
    const beforeCut = [from - 3, from - 2, from - 1].map(worst);
    const atHeal = Math.max(...[heal, heal + 1, heal + 2].map(worst));
    assert.ok(
      atHeal > Math.max(...beforeCut),
      `disagreement at the heal ${atHeal} vs before the cut ${beforeCut.join(', ')}`,
    );
    // No frame crossed the cut while it was in force.
    for (const r of records.filter((r) => r.round >= from && r.round < heal)) {
      const across = r.node < 3 ? [3, 4, 5] : [0, 1, 2];
      assert.ok(!r.heard.some((j) => across.includes(j)), `node ${r.node} round ${r.round}`);
    }
  });

  it('kept every action in the event log with its round, and logged no console error', () => {
    const kinds = liveFaults().map((e) => e.action.kind);
    assert.deepEqual(kinds, ['kill', 'restart', 'partition', 'heal']);
    for (const e of liveFaults()) assert.ok(Number.isInteger(e.round) && e.round >= 0);
    assert.deepEqual(consoleErrors, []);
  });

  it('replays the finished run with `flatmesh watch`, read-only', async () => {
    await browser.close();
    stop.abort();
    await run;
    await closeDashboard();
    const ac = new AbortController();
    let watchUrl = '';
    const watching = watchCommand(
      { dir: out, print: (l) => (watchUrl = l.split(' ')[1]!) },
      ac.signal,
    );
    await until(() => watchUrl !== '', 'the watch URL', 30_000);
    const info = (await (await fetch(new URL('/api/info', watchUrl))).json()) as {
      readonly: boolean;
    };
    assert.equal(info.readonly, true);
    const token2 = new URL(watchUrl).searchParams.get('token')!;
    const refused = await fetch(new URL('/api/control', watchUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-flatmesh-token': token2 },
      body: JSON.stringify({ kind: 'heal' }),
    });
    assert.equal(refused.status, 403);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 950 } });
    await page.goto(watchUrl);
    await until(async () => (await page.locator('.node').count()) === NODES, 'the replayed grid');
    assert.equal(await page.isVisible('#kill'), false, 'no controls when read-only');
    await until(
      async () => ((await page.textContent('#faults')) ?? '').includes('kill -9 node 2'),
      'the live faults in the replay',
    );
    await shot('6-watch-replay');
    ac.abort();
    await watching;
  });

  it('replays the injected faults in the simulator (`flatmesh sim --replay`)', async () => {
    const { cfg, live } = replayPlan(out);
    const kill = liveFaults().find((e) => e.action.kind === 'kill')!;
    const cut = liveFaults().find((e) => e.action.kind === 'partition')!;
    const heal = liveFaults().find((e) => e.action.kind === 'heal')!.round;
    const back = records.find((r) => r.node === 2 && r.time > kill.time)!.round;
    assert.deepEqual(cfg.faults.crashes, [
      { node: 2, round: kill.round, restartAfter: back - 1 - kill.round },
    ]);
    assert.deepEqual(cfg.faults.partitions, [
      {
        groups: [
          [0, 1, 2],
          [3, 4, 5],
        ],
        from: cut.round,
        to: heal,
      },
    ]);
    assert.deepEqual(live, []);
    const sim: RoundRecord[] = [];
    await simulate(
      { ...cfg, run: { ...cfg.run, rounds: heal + 2 } },
      { liveFaults: live, onRound: (r) => sim.push(r) },
    );
    // Node 2 is down from the round after the kill until it came back in the real run.
    const node2 = new Set(sim.filter((r) => r.node === 2).map((r) => r.round));
    for (let k = kill.round + 1; k < back; k++) assert.ok(!node2.has(k), `node 2 round ${k}`);
    assert.ok(node2.has(back));
    // Nobody hears across the cut while it is in force, and everyone does again after the heal.
    for (const r of sim.filter((r) => r.round >= cut.round && r.round < heal)) {
      const across = r.node < 3 ? [3, 4, 5] : [0, 1, 2];
      assert.ok(!r.heard.some((j) => across.includes(j)), `node ${r.node} round ${r.round}`);
    }
    assert.ok(sim.some((r) => r.round === heal && r.node === 2 && r.heard.includes(3)));
  });
});
