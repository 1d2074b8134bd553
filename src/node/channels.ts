/**
 * What a frame carries: the model, then, when the experiment asks for them, gradient tracking's
 * tracker (node/tracking.ts) and the node's SWA average (swa.gossip). All travel in one frame of
 * `channels x model size` values, so the wire, its codec and its checks carry them unchanged (the
 * run's frame size and layout are multiplied, node/build.ts `deriveRun`), and a node of another
 * experiment refuses such frames by their size.
 *
 *   const frame = new FrameChannels(cfg, model.size);
 *   transport.send(j, k, frame.pack({ model: x, tracker: y }));     // absent channels: zeros
 *   const models = frame.parts(received, 'model');                  // views into the frames
 */
import type { Experiment } from '../config/schema.js';
import type { WeightsMessage } from '../net/transport.js';

export type Channel = 'model' | 'tracker' | 'swa';

/** The channels of the experiment's frames, in frame order. */
export function frameChannels(cfg: Pick<Experiment, 'train' | 'swa'>): Channel[] {
  return [
    'model',
    ...(cfg.train.gradientTracking ? (['tracker'] as const) : []),
    ...(cfg.swa.enabled && cfg.swa.gossip ? (['swa'] as const) : []),
  ];
}

export class FrameChannels {
  readonly channels: readonly Channel[];

  constructor(
    cfg: Pick<Experiment, 'train' | 'swa'>,
    readonly size: number,
  ) {
    this.channels = frameChannels(cfg);
  }

  /** Whether frames carry more than the model. */
  get extended(): boolean {
    return this.channels.length > 1;
  }

  has(ch: Channel): boolean {
    return this.channels.includes(ch);
  }

  /** One frame vector from the channels' values (a channel without a value is zeros). */
  pack(values: Partial<Record<Channel, Float32Array>>): Float32Array {
    if (!this.extended) return values.model!;
    const out = new Float32Array(this.channels.length * this.size);
    this.channels.forEach((ch, i) => {
      const v = values[ch];
      if (v) out.set(v, i * this.size);
    });
    return out;
  }

  /** Channel `ch` of each received frame, as messages whose weights are views into the frames. */
  parts(received: readonly WeightsMessage[], ch: Channel): WeightsMessage[] {
    if (!this.extended) return [...received];
    const i = this.channels.indexOf(ch);
    return received.map((m) => ({
      ...m,
      weights: m.weights.subarray(i * this.size, (i + 1) * this.size),
    }));
  }
}
