/**
 * A minimal reader for (gzipped) tar archives, enough for the data-set archives flatmesh fetches:
 * regular files in ustar format, with GNU long names and pax `path` records.
 *
 *   for (const e of tarEntries(gunzipSync(bytes))) if (e.name.endsWith('.bin')) use(e.data);
 */
import { DataError } from '../errors.js';

export interface TarEntry {
  readonly name: string;
  readonly data: Uint8Array;
}

const BLOCK = 512;

function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Buffer.from(end < 0 ? b : b.subarray(0, end)).toString('utf8');
}

function octal(b: Uint8Array, source: string): number {
  const s = cString(b).trim();
  if (!/^[0-7]*$/.test(s)) throw new DataError(`${source}: bad tar size field "${s}"`);
  return s === '' ? 0 : Number.parseInt(s, 8);
}

/** The regular files of an uncompressed tar archive, in archive order. */
export function* tarEntries(tar: Uint8Array, source = 'archive'): Generator<TarEntry> {
  let pos = 0;
  let longName: string | undefined;
  while (pos + BLOCK <= tar.length) {
    const h = tar.subarray(pos, pos + BLOCK);
    if (h.every((b) => b === 0)) return; // end-of-archive marker
    const size = octal(h.subarray(124, 136), source);
    const type = String.fromCharCode(h[156]!);
    const dataStart = pos + BLOCK;
    if (dataStart + size > tar.length) throw new DataError(`${source}: truncated tar archive`);
    const data = tar.subarray(dataStart, dataStart + size);
    pos = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L') {
      longName = cString(data);
      continue;
    }
    if (type === 'x') {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(Buffer.from(data).toString('utf8'));
      if (m) longName = m[1];
      continue;
    }
    let name = cString(h.subarray(0, 100));
    const prefix = cString(h.subarray(345, 500));
    if (prefix && Buffer.from(h.subarray(257, 262)).toString() === 'ustar')
      name = `${prefix}/${name}`;
    if (longName !== undefined) name = longName;
    longName = undefined;
    if (type === '0' || type === '\0') yield { name, data };
  }
}
