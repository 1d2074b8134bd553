/**
 * `flatmesh roster`: node keys, a fresh run id, the roster and (for a run across hosts) a
 * pre-shared key, with what to do next.
 *
 *   await rosterCommand({ nodes: 3, hosts: ['10.0.0.1', '10.0.0.2'], basePort: 4100, out: 'c' });
 */
import { join } from 'node:path';
import { createRoster, PSK_FILE, type RosterOptions } from '../run/roster.js';

export async function rosterCommand(opts: RosterOptions): Promise<string> {
  const roster = await createRoster(opts);
  const key = join(opts.out, PSK_FILE);
  return [
    `wrote ${join(opts.out, 'roster.json')} (run ${roster.runId}) and ${roster.nodes.length} node keys under ${join(opts.out, 'nodes')}/`,
    ...(roster.pskFingerprint
      ? [
          `wrote the run's pre-shared key ${key} (fingerprint ${roster.pskFingerprint}): copy it to every host and set network.psk to its path`,
        ]
      : ['no pre-shared key (--psk writes one): admission is by roster only']),
    `start node I on its host: flatmesh node --config EXP --id I --dir ${join(opts.out, 'nodes', 'I')} --roster ${join(opts.out, 'roster.json')}`,
    '',
  ].join('\n');
}
