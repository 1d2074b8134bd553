import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tarEntries } from '../../src/data/tar.js';
import { DataError } from '../../src/errors.js';

function header(name: string, size: number, type: string, prefix = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  h.write(size.toString(8).padStart(11, '0'), 124, 'latin1');
  h.write(type, 156, 'latin1');
  h.write('ustar\u000000', 257, 'latin1');
  h.write(prefix, 345, 'utf8');
  return h;
}

function entry(name: string, data: Buffer, type = '0', prefix = ''): Buffer {
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header(name, data.length, type, prefix), data, pad]);
}

describe('tarEntries', () => {
  it('reads files, ustar prefixes, pax paths and GNU long names, skipping directories', () => {
    const long = `package/${'d'.repeat(120)}/x.bin`;
    const rec = ' path=package/pax-name.json\n';
    const pax = Buffer.from(`${rec.length + 2}${rec}`); // the length counts its own two digits
    const tar = Buffer.concat([
      entry('package/', Buffer.alloc(0), '5'),
      entry('a.txt', Buffer.from('hello'), '0', 'package'),
      entry('PaxHeader', pax, 'x'),
      entry('short', Buffer.from('[1,2]')),
      entry('././@LongLink', Buffer.from(`${long}\0`), 'L'),
      entry('trunc', Buffer.alloc(600, 7)),
      Buffer.alloc(1024),
    ]);
    const got = [...tarEntries(tar)].map((e) => [e.name, e.data.length]);
    assert.deepEqual(got, [
      ['package/a.txt', 5],
      ['package/pax-name.json', 5],
      [long, 600],
    ]);
  });

  it('reports a truncated archive', () => {
    const tar = entry('a', Buffer.alloc(1000));
    assert.throws(() => [...tarEntries(tar.subarray(0, 900))], DataError);
  });
});
