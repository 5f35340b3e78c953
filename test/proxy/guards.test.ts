// proxy/guards.ts: where the forward proxy never goes, checked by name and by the address a connection reaches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { destinationGuard } from '../../src/proxy/guards.ts';

test('destination guard: GCE_METADATA_HOST\'s address and port are refused under every spelling and name, other ports are not', async () => {
  const guard = await destinationGuard(['127.0.0.1:8181', 'md.internal.test:9000'], async (name) => (name === 'md.internal.test' ? ['10.9.8.7'] : []));
  for (const [address, port] of [['127.0.0.1', 8181], ['::ffff:127.0.0.1', 8181], ['::ffff:7f00:1', 8181], ['10.9.8.7', 9000], ['169.254.169.254', 80], ['::ffff:a9fe:a9fe', 443]] as const) {
    assert.equal(guard.refusesPeer(address, port), true, `${address}:${port}`);
  }
  for (const [address, port] of [['127.0.0.1', 8182], ['10.9.8.7', 80], ['10.0.0.1', 8181]] as const) {
    assert.equal(guard.refusesPeer(address, port), false, `${address}:${port}`);
  }
  assert.equal(guard.refusesPeer(undefined, undefined), true, 'a socket that never learnt its peer is refused');
  assert.equal(guard.refuses('md.internal.test', 9000), true, 'by name, before connecting');
  assert.equal(guard.refuses('[::ffff:7f00:1]', 8181), true);
  assert.equal(guard.refuses('svc.run.app', 443), false);
});

test('destination guard: a metadata host name that does not resolve in time is skipped, not waited for', async () => {
  const guard = await destinationGuard(['slow.test:80'], () => new Promise(() => {}), 10);
  assert.equal(guard.refusesPeer('10.0.0.1', 80), false);
  assert.equal(guard.refuses('slow.test', 80), true, 'the name itself is still refused');
});
