/**
 * Quasi-global momentum (QG-DSGDm; Lin, Karimireddy, Stich, Jaggi, *Quasi-Global Momentum:
 * Accelerating Decentralized Deep Learning on Heterogeneous Data*, ICML 2021). With local momentum
 * each node's buffer accumulates its own gradients, which on non-IID data point each node its own
 * way, and the buffers keep pushing the nodes apart after gossip pulls them together. QG-DSGDm
 * builds the buffer from the node's whole model change instead, gossip included:
 *
 *   d      = (x_start - x_mixed) / (lr * steps)     the round's change per local step
 *   m_hat <- mu * m_hat + (1 - mu) * d
 *
 * and the next round's local steps use it as a fixed buffer: each step is
 * w <- w - lr * (g + beta * m_hat), the paper's update (flatmesh runs `steps` local steps per
 * gossip, the paper one, hence the division by steps; the buffer is not accumulated over the
 * round's steps, which would bring local momentum's drift back). beta = mu = train.momentum. m_hat
 * lives in the optimizer's momentum buffers (an optimizer made with `quasiGlobal: true` leaves them
 * alone), so a checkpoint holds it.
 *
 * The property that makes it work on non-IID data: at a steady state the round's change d is 0, so
 * m_hat is 0 and the fixed points are D-SGD's. Local momentum's drift towards each node's own
 * optimum is amplified by 1 / (1 - beta) (test/learn/optim-qg.test.ts measures both).
 *
 *   const qg = new QuasiGlobalMomentum(optimizer, 0.9);   // optimizer: quasiGlobal: true
 *   const x0 = readFlat(model); trainer.train(steps, lr); ...mix...; qg.end(x0, mixed, lr, steps);
 */
import type { LocalOptimizer } from './types.js';

export class QuasiGlobalMomentum {
  constructor(
    private readonly optimizer: LocalOptimizer,
    private readonly mu: number,
  ) {
    if (!optimizer.spec.quasiGlobal || !(mu > 0 && mu < 1))
      throw new RangeError(
        'quasi-global momentum needs an optimizer with quasiGlobal and momentum',
      );
  }

  /**
   * Call after mixing, with the model at the round's start and after mixing (flat, in parameter
   * order), and the round's learning rate and step count: sets the buffers to the new m_hat.
   */
  end(xStart: Float32Array, xMixed: Float32Array, lr: number, steps: number): void {
    if (!(lr > 0) || steps < 1) return;
    const prev = this.optimizer.getState();
    const scale = 1 / (lr * steps);
    const next: Record<string, Float32Array> = {};
    let offset = 0;
    // Buffers come in parameter order, the order of the flat vector.
    for (const [name, m] of Object.entries(prev)) {
      const out = new Float32Array(m.length);
      for (let k = 0; k < m.length; k++) {
        const d = (xStart[offset + k]! - xMixed[offset + k]!) * scale;
        out[k] = this.mu * m[k]! + (1 - this.mu) * d;
      }
      next[name] = out;
      offset += m.length;
    }
    if (offset !== xStart.length)
      throw new RangeError(`momentum buffers hold ${offset} values, the model ${xStart.length}`);
    this.optimizer.setState(next);
  }
}
