/**
 * The pre-shared key of a private run (libp2p private network, @libp2p/pnet): every connection is
 * encrypted with it before anything else is said, so a host without the key cannot complete a
 * connection to any node of the run, roster or not. `flatmesh roster` writes one for a run across
 * machines; the experiment names it in `network.psk`; the roster records its fingerprint so that a
 * node started without the key (or with another run's) says so instead of never connecting.
 *
 *   const { fingerprint } = await writePsk('cluster/swarm.key');   // fresh key, mode 0600
 *   const { key } = await readPsk('cluster/swarm.key');            // ConfigError naming network.psk
 *   libp2pTransport({ ..., psk: key });
 */
import { createHash } from 'node:crypto';
import { open, readFile, rename } from 'node:fs/promises';
import { generateKey } from '@libp2p/pnet';
import { ConfigError } from '../../errors.js';

/** The file `flatmesh roster` writes next to roster.json. */
export const PSK_FILE = 'swarm.key';

/** The experiment field that names the key file (every error about the key names it). */
const FIELD = 'network.psk';

/** Length of a v1 swarm key file: header lines and 64 hex digits (see @libp2p/pnet). */
const KEY_FILE_BYTES = 95;

/** The key file format: `/key/swarm/psk/1.0.0/`, `/base16/`, then 32 bytes in hex. */
const KEY_FILE = /^\/key\/swarm\/psk\/1\.0\.0\/\r?\n\/base16\/\r?\n([0-9a-fA-F]{64})\s*$/;

export interface Psk {
  /** The key file's bytes, as libp2p's connection protector takes them. */
  readonly key: Uint8Array;
  /** A short public fingerprint of the key (recorded in the roster; reveals nothing usable). */
  readonly fingerprint: string;
}

/** Write a fresh random key to `file` (atomically, mode 0600 from creation). */
export async function writePsk(file: string): Promise<Psk> {
  const key = new Uint8Array(KEY_FILE_BYTES);
  generateKey(key);
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(key);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  return { key, fingerprint: fingerprintOf(key) };
}

/** Read and check a key file; a missing or malformed file is a ConfigError naming network.psk. */
export async function readPsk(file: string): Promise<Psk> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(FIELD, `cannot read the key file ${file} (${code ?? String(e)})`);
  }
  if (!KEY_FILE.test(bytes.toString('latin1'))) {
    throw new ConfigError(
      FIELD,
      `${file} is not a libp2p swarm key (3 lines: /key/swarm/psk/1.0.0/, /base16/, 64 hex digits); flatmesh roster writes one`,
    );
  }
  const key = new Uint8Array(bytes);
  return { key, fingerprint: fingerprintOf(key) };
}

/** SHA-256 of the key's 32 bytes, first 16 hex digits. */
export function fingerprintOf(keyFile: Uint8Array): string {
  const hex = KEY_FILE.exec(Buffer.from(keyFile).toString('latin1'))?.[1];
  if (!hex) throw new ConfigError(FIELD, 'is not a libp2p swarm key');
  return createHash('sha256')
    .update(Buffer.from(hex.toLowerCase(), 'hex'))
    .digest('hex')
    .slice(0, 16);
}
