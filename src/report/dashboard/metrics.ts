/**
 * Prometheus metrics of a run (the dashboard's GET /metrics), kept by prom-client from the run's
 * events: per node, gauges of its round, accuracies, disagreement, RSS and whether its process is
 * up, and counters of messages by fate, bytes, phase seconds and injected faults. A user who runs
 * Prometheus and Grafana scrapes 127.0.0.1:PORT/metrics.
 *
 *   const m = new DashboardMetrics();
 *   events.on((e) => m.observe(e));
 *   await m.text();   // the exposition format
 */
import { Counter, Gauge, Registry } from 'prom-client';

/** The fields of a round record the metrics read (src/node/metrics.ts RoundRecord has them). */
interface RoundFields {
  node: number;
  round: number;
  accuracy?: number;
  swaAccuracy?: number;
  disagreement: number | null;
  rssMB: number;
  bytesSent: number;
  bytesReceived: number;
  messages: Record<string, number>;
  phases: Record<string, number>;
  faults: Record<string, number>;
}

/** The run events the metrics read (src/run/events.ts RunEvent has these shapes). */
export type MetricsEvent =
  | { type: 'round'; record: RoundFields }
  | { type: 'node'; node: number; state: string }
  | { type: string };

const UP = new Set(['starting', 'restarting', 'training', 'exchanging']);

export class DashboardMetrics {
  private readonly registry = new Registry();
  private readonly round = this.gauge('flatmesh_node_round', 'last round the node finished');
  private readonly accuracy = this.gauge('flatmesh_node_accuracy', 'test accuracy, last evaluated');
  private readonly swa = this.gauge('flatmesh_node_swa_accuracy', 'SWA model test accuracy');
  private readonly disagreement = this.gauge(
    'flatmesh_node_disagreement',
    'mean RMS distance to the neighbours heard in the last round',
  );
  private readonly rss = this.gauge('flatmesh_node_rss_bytes', 'resident memory of the process');
  private readonly up = this.gauge('flatmesh_node_up', '1 while the node process runs');
  private readonly messages = this.counter(
    'flatmesh_messages_total',
    'weight messages by fate (sent, delivered, dropped, failed, received, missing, lost, late, rejected)',
    'fate',
  );
  private readonly bytes = this.counter(
    'flatmesh_bytes_total',
    'weight bytes sent and received',
    'direction',
  );
  private readonly phases = this.counter(
    'flatmesh_phase_seconds_total',
    'seconds spent per round phase (train, exchange, wait, mix, eval, checkpoint, round)',
    'phase',
  );
  private readonly faults = this.counter(
    'flatmesh_faults_total',
    'injected faults by kind, as the nodes counted them',
    'kind',
  );

  get contentType(): string {
    return this.registry.contentType;
  }

  private gauge(name: string, help: string): Gauge<'node'> {
    return new Gauge({ name, help, labelNames: ['node'], registers: [this.registry] });
  }

  /** A counter per node and one more label (`fate`, `direction`, `phase`, `kind`). */
  private counter<L extends string>(name: string, help: string, label: L): Counter<'node' | L> {
    return new Counter({ name, help, labelNames: ['node', label], registers: [this.registry] });
  }

  observe(e: MetricsEvent): void {
    if (e.type === 'node' && 'state' in e) {
      this.up.set({ node: String(e.node) }, UP.has(e.state) ? 1 : 0);
      return;
    }
    if (e.type !== 'round' || !('record' in e)) return;
    const r = e.record;
    const node = String(r.node);
    this.round.set({ node }, r.round);
    this.up.set({ node }, 1);
    if (r.accuracy !== undefined) this.accuracy.set({ node }, r.accuracy);
    if (r.swaAccuracy !== undefined) this.swa.set({ node }, r.swaAccuracy);
    if (r.disagreement !== null) this.disagreement.set({ node }, r.disagreement);
    this.rss.set({ node }, r.rssMB * 1024 * 1024);
    for (const [fate, n] of Object.entries(r.messages)) {
      if (n > 0) this.messages.inc({ node, fate }, n);
    }
    if (r.bytesSent > 0) this.bytes.inc({ node, direction: 'sent' }, r.bytesSent);
    if (r.bytesReceived > 0) this.bytes.inc({ node, direction: 'received' }, r.bytesReceived);
    for (const [phase, ms] of Object.entries(r.phases)) {
      if (ms > 0) this.phases.inc({ node, phase: phase.replace(/Ms$/, '') }, ms / 1000);
    }
    for (const [kind, n] of Object.entries(r.faults)) {
      if (n > 0) this.faults.inc({ node, kind }, n);
    }
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
