/**
 * Training-time augmentation for image batches: random crop after zero padding, and random
 * horizontal flip (the standard CIFAR-10 recipe: pad 4, crop 32x32, flip with probability 1/2).
 * Seeded through the caller's `Rng`, so a node's augmentation replays exactly.
 *
 *   const rng = Rng.from(seed, 'augment', nodeIndex);
 *   const xb = augmentBatch(batch, 32, [32, 32, 3], rng);  // a new array; `batch` is untouched
 */
import type { Rng } from '../compute/rng.js';

export interface AugmentOptions {
  /** Zero padding on each side before the random crop; default 4. 0 disables cropping. */
  pad?: number;
  /** Mirror left-right with probability 1/2; default true. */
  flip?: boolean;
  /** Value of padded pixels; default 0 (black in [0,1] pixels). */
  fill?: number;
}

/** Augment `count` images of shape [H, W, C] (NHWC, row-major) into a new array. */
export function augmentBatch(
  batch: Float32Array,
  count: number,
  shape: readonly number[],
  rng: Rng,
  opts: AugmentOptions = {},
): Float32Array {
  const [h, w, c] = shape as [number, number, number];
  if (shape.length !== 3 || batch.length !== count * h * w * c) {
    throw new RangeError(
      `augmentBatch: ${batch.length} values is not ${count} images of shape [${shape.join(', ')}]`,
    );
  }
  const pad = opts.pad ?? 4;
  const flip = opts.flip ?? true;
  const fill = opts.fill ?? 0;
  const size = h * w * c;
  const out = new Float32Array(batch.length);
  for (let n = 0; n < count; n++) {
    // Draw order fixed per image (dy, dx, flip) so a change in options never shifts later images.
    const dy = rng.int(2 * pad + 1) - pad;
    const dx = rng.int(2 * pad + 1) - pad;
    const mirror = rng.bernoulli(0.5) && flip;
    const base = n * size;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      for (let x = 0; x < w; x++) {
        const sx = (mirror ? w - 1 - x : x) + dx;
        const o = base + (y * w + x) * c;
        if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
          out.fill(fill, o, o + c);
        } else {
          const s = base + (sy * w + sx) * c;
          for (let k = 0; k < c; k++) out[o + k] = batch[s + k]!;
        }
      }
    }
  }
  return out;
}
