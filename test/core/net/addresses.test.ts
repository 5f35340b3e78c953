// core/net/addresses.ts: every spelling of a loopback or link-local address is recognised as one, since the rules
// built on it (plain http allowed, never proxied, never relayed) must not be sidestepped by writing it differently.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { embeddedIpv4, isLinkLocal, isLoopback } from '../../../src/core/net/addresses.ts';

const cases: { host: string; linkLocal: boolean; loopback: boolean }[] = [
  { host: '169.254.169.254', linkLocal: true, loopback: false },
  { host: '[::ffff:169.254.169.254]', linkLocal: true, loopback: false },
  { host: '::ffff:a9fe:a9fe', linkLocal: true, loopback: false },
  { host: '0:0:0:0:0:ffff:a9fe:a9fe', linkLocal: true, loopback: false },
  { host: '64:ff9b::a9fe:a9fe', linkLocal: true, loopback: false },
  { host: 'fe80::1', linkLocal: true, loopback: false },
  { host: 'febf:ffff::1', linkLocal: true, loopback: false },
  { host: 'fd00:ec2::254', linkLocal: true, loopback: false },
  { host: 'fd00:0ec2:0000:0000:0000:0000:0000:0254', linkLocal: true, loopback: false },
  { host: 'metadata.google.internal.', linkLocal: true, loopback: false },
  { host: 'METADATA', linkLocal: true, loopback: false },
  { host: 'fec0::1', linkLocal: false, loopback: false },
  { host: '169.255.0.1', linkLocal: false, loopback: false },
  { host: '127.0.0.1', linkLocal: false, loopback: true },
  { host: '127.8.9.10', linkLocal: false, loopback: true },
  { host: '::1', linkLocal: false, loopback: true },
  { host: '[::ffff:127.0.0.1]', linkLocal: false, loopback: true },
  { host: '::ffff:7f00:1', linkLocal: false, loopback: true },
  { host: 'localhost', linkLocal: false, loopback: true },
  // NAT64 carries a remote IPv4 address: 127/8 inside it is not this machine.
  { host: '64:ff9b::7f00:1', linkLocal: false, loopback: false },
  { host: '2001:db8::a9fe:a9fe', linkLocal: false, loopback: false },
  { host: 'hello-abc.a.run.app', linkLocal: false, loopback: false },
];
for (const c of cases) {
  test(`addresses: ${c.host} is ${c.linkLocal ? '' : 'not '}link-local and ${c.loopback ? '' : 'not '}loopback`, () => {
    assert.equal(isLinkLocal(c.host), c.linkLocal);
    assert.equal(isLoopback(c.host), c.loopback);
  });
}

test('addresses: the IPv4 inside mapped and NAT64 IPv6, in either spelling; none in other IPv6', () => {
  assert.deepEqual(embeddedIpv4('::ffff:10.1.2.3'), { v4: '10.1.2.3', mapped: true });
  assert.deepEqual(embeddedIpv4('::FFFF:0a01:0203'), { v4: '10.1.2.3', mapped: true });
  assert.deepEqual(embeddedIpv4('64:ff9b::10.1.2.3'), { v4: '10.1.2.3', mapped: false });
  assert.equal(embeddedIpv4('2001:db8::1'), null);
  assert.equal(embeddedIpv4('10.1.2.3'), null);
});
