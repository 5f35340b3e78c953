// core/net/certificates.ts: the CA's certificates are ones real TLS clients accept, and its name constraints hold.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { connect, createSecureContext, createServer } from 'node:tls';
import { createCertificateAuthority, loadCertificateAuthority } from '../../../src/core/net/certificates.ts';

/** Serve `cert` on 127.0.0.1 and connect as a client that trusts only `ca`, asking for `servername`. */
async function handshake(cert: { certPem: string; keyPem: string }, ca: string, servername: string): Promise<{ authorized: boolean; error?: string }> {
  // The server never closes first: the client's verdict on the certificate is the only thing that ends a handshake.
  const sockets: import('node:tls').TLSSocket[] = [];
  const server = createServer({ cert: cert.certPem, key: cert.keyPem }, (s) => void sockets.push(s));
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  try {
    return await new Promise((resolve) => {
      const socket = connect({ host: '127.0.0.1', port, servername: servername === '127.0.0.1' ? undefined : servername, ca, ...(servername === '127.0.0.1' ? { checkServerIdentity: () => undefined } : {}) } as never, () => {
        resolve({ authorized: socket.authorized });
        socket.destroy();
      });
      socket.on('error', (err: NodeJS.ErrnoException) => resolve({ authorized: false, error: `${err.code} ${err.message}` }));
    });
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
}

test('certificates: a leaf for a host verifies with the CA and no other trust, with the host as its SAN', async () => {
  const ca = createCertificateAuthority({ commonName: 'idcall test CA', now: Date.now() });
  const leaf = ca.issue(['hello-123456789012.us-central1.run.app', '127.0.0.1'], { now: Date.now() });
  assert.deepEqual(await handshake(leaf, ca.certPem, 'hello-123456789012.us-central1.run.app'), { authorized: true });
  const parsed = new X509Certificate(leaf.certPem);
  assert.match(parsed.subjectAltName ?? '', /DNS:hello-123456789012\.us-central1\.run\.app, IP Address:127\.0\.0\.1/);
  assert.ok(parsed.verify(new X509Certificate(ca.certPem).publicKey));
  assert.equal(new X509Certificate(ca.certPem).ca, true);
  const other = createCertificateAuthority({ commonName: 'another CA', now: Date.now() });
  assert.equal((await handshake(leaf, other.certPem, 'hello-123456789012.us-central1.run.app')).authorized, false, 'not trusted by a CA that did not sign it');
});

test('certificates: name constraints: a leaf for a name outside them fails verification, inside verifies', async () => {
  const ca = createCertificateAuthority({ commonName: 'constrained', permittedDns: ['*.run.app', 'cloudfunctions.net'], now: Date.now() });
  assert.deepEqual(await handshake(ca.issue(['svc-1.us-central1.run.app'], { now: Date.now() }), ca.certPem, 'svc-1.us-central1.run.app'), { authorized: true });
  assert.deepEqual(await handshake(ca.issue(['us-central1-p.cloudfunctions.net'], { now: Date.now() }), ca.certPem, 'us-central1-p.cloudfunctions.net'), { authorized: true });
  const outside = await handshake(ca.issue(['www.google.com'], { now: Date.now() }), ca.certPem, 'www.google.com');
  assert.equal(outside.authorized, false);
  assert.match(String(outside.error), /permitted subtree violation|NAME_CONSTRAINTS/i, String(outside.error));
});

test('certificates: a CA loaded from its PEM files issues as the one that made them; leaves are short-lived', async () => {
  const made = createCertificateAuthority({ commonName: 'reloaded', now: Date.now() });
  const again = loadCertificateAuthority(made.certPem, made.keyPem);
  const leaf = again.issue(['a.example'], { now: Date.now() });
  assert.deepEqual(await handshake(leaf, made.certPem, 'a.example'), { authorized: true });
  const lifetime = Date.parse(new X509Certificate(leaf.certPem).validTo) - Date.now();
  assert.ok(lifetime <= 24 * 3600_000 + 5000, 'a day at most by default');
});

test('certificates: every one is valid DER (a random serial with a zero first byte once made 1 in 150 unusable)', () => {
  const ca = createCertificateAuthority({ commonName: 'many', now: Date.now(), permittedDns: ['run.app'] });
  for (let i = 0; i < 400; i++) {
    const leaf = ca.issue([`s${i}.run.app`], { now: Date.now() });
    assert.doesNotThrow(() => createSecureContext({ cert: leaf.certPem, key: leaf.keyPem, ca: ca.certPem }), `certificate ${i}`);
  }
});

test('certificates: a name-constrained CA cannot sign for IP addresses, except those it names (DNS constraints alone leave IPs open)', async () => {
  const dnsOnly = createCertificateAuthority({ commonName: 'dns only', permittedDns: ['run.app'], now: Date.now() });
  for (const ip of ['8.8.8.8', '127.0.0.1', '::1']) {
    const result = await handshake(dnsOnly.issue([ip], { now: Date.now() }), dnsOnly.certPem, '127.0.0.1');
    assert.equal(result.authorized, false, `a leaf for ${ip}`);
    assert.match(String(result.error), /subtree violation|NAME_CONSTRAINTS/i, String(result.error));
  }
  const withLoopback = createCertificateAuthority({ commonName: 'emulator-like', permittedDns: ['run.app'], permittedIps: ['127.0.0.1/32'], now: Date.now() });
  assert.deepEqual(await handshake(withLoopback.issue(['a.run.app', '127.0.0.1'], { now: Date.now() }), withLoopback.certPem, 'a.run.app'), { authorized: true });
  assert.equal((await handshake(withLoopback.issue(['10.0.0.1'], { now: Date.now() }), withLoopback.certPem, '127.0.0.1')).authorized, false, 'another address');
});
