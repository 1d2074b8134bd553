/**
 * `--help` on every command prints that command's usage and runs nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { main, USAGE } from '../../src/cli/main.js';

/** The commands the overview lists (`  name   description`). */
const commands = USAGE.split('\n')
  .map((l) => /^ {2}([a-z]+) {2,}/.exec(l)?.[1])
  .filter((c): c is string => c !== undefined);

describe('flatmesh <command> --help', () => {
  it('the overview lists the commands', () => {
    for (const c of ['launch', 'sim', 'node', 'roster', 'collect', 'sweep', 'topology', 'config'])
      assert.ok(commands.includes(c), `${c} in ${commands.join(', ')}`);
  });

  for (const cmd of commands) {
    it(`${cmd} --help and ${cmd} -h print its usage`, async () => {
      for (const flag of ['--help', '-h']) {
        const { code, out } = await main([cmd, flag]);
        assert.equal(code, 0);
        assert.match(out, new RegExp(`^usage: flatmesh ${cmd}\\b`), out);
      }
    });
  }

  it('sub-commands take --help too, even with other (or missing) arguments', async () => {
    for (const argv of [
      ['topology', 'inspect', '--help'],
      ['data', 'fetch', '--help'],
      ['config', 'show', '--help'],
      ['node', '--id', '3', '--help'],
    ]) {
      const { code, out } = await main(argv);
      assert.equal(code, 0, argv.join(' '));
      assert.match(out, new RegExp(`^usage: flatmesh ${argv[0]}`));
    }
    const launch = await main(['launch', '--help']);
    assert.match(launch.out, /--resume/);
    assert.match(launch.out, /--rounds R/);
    const node = await main(['node', '--help']);
    assert.match(node.out, /--roster R/);
  });
});
