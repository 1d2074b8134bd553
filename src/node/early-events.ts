/**
 * The transport events a node's runtime learns from (heartbeats, frame arrivals), held until the
 * runtime exists and then replayed into it. A process sets up its host and connections before it
 * loads its data and builds its runtime; a node started late hears its neighbours' frames and
 * heartbeats meanwhile, and those say where the run is. Kept, they let its very first round be
 * the run's current round; dropped, it trained a round 0 nobody collects and joined a round late.
 *
 *   const relay = earlyEvents();
 *   const t = libp2pTransport(init)({ events: { ...relay.events, onReject } });
 *   ... const runtime = new NodeRuntime(deps); relay.attach(runtime);
 */
import type { ControlMessage } from '../net/transport.js';

/** What receives the events: NodeRuntime. */
export interface EventTarget {
  onControl(msg: ControlMessage): void;
  onFrame(from: number, round: number): void;
}

/** At most this many events are held (the oldest go first): a node's setup lasts seconds. */
const HELD = 1024;

export function earlyEvents(): {
  events: EventTarget;
  attach(target: EventTarget): void;
} {
  let target: EventTarget | undefined;
  const held: ((t: EventTarget) => void)[] = [];
  const hold = (f: (t: EventTarget) => void) => {
    if (target) return f(target);
    held.push(f);
    if (held.length > HELD) held.shift();
  };
  return {
    events: {
      onControl: (m) => hold((t) => t.onControl(m)),
      onFrame: (from, round) => hold((t) => t.onFrame(from, round)),
    },
    attach(t) {
      target = t;
      for (const f of held.splice(0)) f(t);
    },
  };
}
