// core/net/routing.ts: curl's --resolve and --connect-to, parsed and applied as curl does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConnectTo, parseResolve, route } from '../../../src/core/net/routing.ts';
import { IdcallError } from '../../../src/core/errors.ts';

test('routing: curl\'s forms parse, IPv6 in brackets, empty parts mean any', () => {
  assert.deepEqual(parseResolve('a.run.app:443:10.0.0.5'), { host: 'a.run.app', port: 443, address: '10.0.0.5' });
  assert.deepEqual(parseResolve('a.run.app:443:[::1]'), { host: 'a.run.app', port: 443, address: '::1' });
  assert.deepEqual(parseConnectTo('a.run.app:443:127.0.0.1:8443'), { host: 'a.run.app', port: 443, connectHost: '127.0.0.1', connectPort: 8443 });
  assert.deepEqual(parseConnectTo('::lb.internal:'), { host: '', port: 0, connectHost: 'lb.internal', connectPort: 0 });
  for (const bad of ['a.run.app:443', 'a.run.app:99999:1.2.3.4', 'nonsense']) assert.throws(() => parseResolve(bad), (e: unknown) => e instanceof IdcallError && e.code === 'USAGE_ERROR');
  assert.throws(() => parseConnectTo('a:1:b'), (e: unknown) => e instanceof IdcallError && e.code === 'USAGE_ERROR');
});

test('routing: --connect-to first, then --resolve on where it points; other hosts untouched', () => {
  const routing = { connectTo: [parseConnectTo('a.run.app:443:edge.internal:8443')], resolve: [parseResolve('edge.internal:8443:10.1.2.3'), parseResolve('b.run.app:443:10.9.9.9')] };
  assert.deepEqual(route(routing, 'a.run.app', 443), { host: '10.1.2.3', port: 8443, via: '--connect-to a.run.app:443:edge.internal:8443, --resolve edge.internal:8443:10.1.2.3' });
  assert.deepEqual(route(routing, 'B.RUN.APP', 443), { host: '10.9.9.9', port: 443, via: '--resolve b.run.app:443:10.9.9.9' });
  assert.equal(route(routing, 'a.run.app', 80), null);
  assert.equal(route(routing, 'c.run.app', 443), null);
});
