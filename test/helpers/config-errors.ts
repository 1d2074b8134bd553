/** Test helper: run `fn`, expect ConfigErrors, and return the problems' messages. */
import assert from 'node:assert/strict';
import { ConfigErrors } from '../../src/errors.js';

export function configProblems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigErrors, `expected ConfigErrors, got ${String(e)}`);
    return e.problems.map((p) => p.message);
  }
  assert.fail('expected ConfigErrors');
}
