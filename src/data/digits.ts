/**
 * The embedded default data set: 1,797 handwritten digits, 8x8 pixels, values 0..16, 10 classes
 * (UCI "Optical Recognition of Handwritten Digits", Alpaydin and Kaynak, 1998; CC BY 4.0), shipped
 * as src/data/assets/digits.csv.gz. It has no official train/test split, so a stratified 80/20 split is drawn
 * from the seed alone: every node of a run gets the same split.
 *
 *   const { train, test } = loadDigits({ seed: 0 });  // shapes [8, 8, 1], pixels in [0, 1]
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { Rng } from '../compute/rng.js';
import { DataError } from '../errors.js';
import { packagePath } from '../paths.js';
import { stratifiedSplit, subset } from './subset.js';
import type { Dataset, DatasetSplit } from './types.js';

/** Sample shape of the digits images (8x8 grey). */
export const DIGITS_SHAPE = [8, 8, 1] as const;

export const DIGITS_COUNT = 1797;
const PIXELS = 64;
const MAX_VALUE = 16;

/** Parse the CSV text (64 pixel values then the label per row, no header) into a Dataset. */
export function parseDigitsCsv(text: string, source = 'digits.csv'): Dataset {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const x = new Float32Array(lines.length * PIXELS);
  const y = new Int32Array(lines.length);
  for (let r = 0; r < lines.length; r++) {
    const cells = lines[r]!.split(',');
    if (cells.length !== PIXELS + 1) {
      throw new DataError(
        `${source}: line ${r + 1} has ${cells.length} fields, expected ${PIXELS + 1}`,
      );
    }
    for (let j = 0; j <= PIXELS; j++) {
      const v = Number(cells[j]);
      const max = j < PIXELS ? MAX_VALUE : 9;
      if (!Number.isInteger(v) || v < 0 || v > max) {
        throw new DataError(
          `${source}: line ${r + 1}, field ${j + 1} is not an integer in [0, ${max}]`,
        );
      }
      if (j < PIXELS) x[r * PIXELS + j] = v / MAX_VALUE;
      else y[r] = v;
    }
  }
  return { x, y, count: lines.length, shape: [...DIGITS_SHAPE], classes: 10 };
}

/** Fraction of each class that goes to the test set. */
export const DIGITS_TEST_FRACTION = 0.2;

export function loadDigits(opts: { seed?: number; file?: string } = {}): DatasetSplit {
  const file = opts.file ?? packagePath('src', 'data', 'assets', 'digits.csv.gz');
  let text: string;
  try {
    text = gunzipSync(readFileSync(file)).toString('utf8');
  } catch (e) {
    throw new DataError(
      `cannot read the embedded digits data at ${file} (${(e as Error).message}); reinstall flatmesh`,
    );
  }
  const all = parseDigitsCsv(text, file);
  const { train, test } = stratifiedSplit(
    all.y,
    all.classes,
    DIGITS_TEST_FRACTION,
    Rng.from(opts.seed ?? 0, 'digits-split'),
  );
  return { name: 'digits', train: subset(all, train), test: subset(all, test) };
}
