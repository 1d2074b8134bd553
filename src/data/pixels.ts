/**
 * Image data sets whose features are bytes over 255 (pixels scaled to [0, 1]) can carry the bytes
 * themselves. A launcher that only partitions such a data set and writes the shards then never
 * builds the float32 features at all (4x the bytes to make, copy, checksum and write), and a node
 * decodes its own shard when it first reads `x`.
 *
 *   const ds = pixelDataset(imageBytes, { y, count, shape: [28, 28, 1], classes: 10 });
 *   pixelsOf(ds);   // the bytes (undefined for a data set built any other way)
 *   ds.x;           // Float32Array, decoded on first access: x[i] = PIXEL_VALUES[bytes[i]]
 *   pixelsOf(ds);   // undefined from then on: the bytes are let go
 *
 * The bytes are a non-enumerable property, so `{ ...ds, x: other }` drops them with the features
 * they described; the spread copies `x` itself as a plain, decoded value.
 */
import type { Dataset } from './types.js';

/** The float32 value of each byte: `byte / 255` rounded to float32, as every loader computes it. */
export const PIXEL_VALUES = Float32Array.from({ length: 256 }, (_, b) => b / 255);

const PIXELS = Symbol('pixels');

export function pixelDataset(pixels: Uint8Array, rest: Omit<Dataset, 'x'>): Dataset {
  let x: Float32Array | undefined;
  let bytes: Uint8Array | undefined = pixels;
  const ds = {
    ...rest,
    get x(): Float32Array {
      if (!x) {
        x = decodePixels(bytes!);
        bytes = undefined;
        // Decoded, the bytes are no longer needed: a node would otherwise hold its data twice.
        delete (ds as { [PIXELS]?: Uint8Array })[PIXELS];
      }
      return x;
    },
  };
  Object.defineProperty(ds, PIXELS, { value: pixels, enumerable: false, configurable: true });
  return ds;
}

export function pixelsOf(ds: Dataset): Uint8Array | undefined {
  return (ds as { [PIXELS]?: Uint8Array })[PIXELS];
}

export function decodePixels(pixels: Uint8Array): Float32Array {
  const x = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) x[i] = PIXEL_VALUES[pixels[i]!]!;
  return x;
}
