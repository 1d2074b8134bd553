/** A node's per-round transport tallies: what a round record says happened on the wire. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NodeCounters } from '../../src/node/metrics.js';

describe('node counters', () => {
  it('count the frames resent after a torn connection, per round', () => {
    const c = new NodeCounters();
    assert.equal(c.take().resends, undefined, 'no resend: no field');
    c.sendRetried(1, 'stream closed without a receipt');
    c.sendRetried(2, 'stream reset');
    c.frameSent(1, 100);
    assert.equal(c.take().resends, 2);
    assert.equal(c.take().resends, undefined, 'the next round starts from zero');
  });
});
