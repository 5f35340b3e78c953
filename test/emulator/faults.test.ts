// Fault injection: each fault kind behaves as the network would, at any endpoint, and recovers after `times`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startEmulator, type Emulator, type Fault } from '../../src/emulator/index.ts';

let emu: Emulator;
before(async () => {
  emu = await startEmulator();
});
after(() => emu.close());

const urlFor: Record<string, () => string> = {
  metadata: () => `${emu.urls.metadata}/computeMetadata/v1/project/project-id`,
  token: () => emu.urls.token,
  certs: () => emu.urls.jwks,
  'service:hello': () => `${emu.urls.services.hello}/`,
};
const get = (endpoint: string, timeoutMs = 2000) => fetch(urlFor[endpoint]!(), { headers: { 'Metadata-Flavor': 'Google' }, signal: AbortSignal.timeout(timeoutMs) });

interface Case {
  fault: Omit<Fault, 'endpoint'>;
  check: (endpoint: string) => Promise<void>;
}
const cases: Record<string, Case> = {
  hang: {
    fault: { kind: 'hang' },
    check: async (e) => {
      const t0 = Date.now();
      await assert.rejects(get(e, 300), { name: 'TimeoutError' });
      assert.ok(Date.now() - t0 >= 290);
    },
  },
  delay: {
    fault: { kind: 'delay', ms: 250 },
    check: async (e) => {
      const t0 = Date.now();
      const res = await get(e);
      await res.arrayBuffer();
      assert.ok(Date.now() - t0 >= 240, 'answered only after the delay');
    },
  },
  'status 500': { fault: { kind: 'status', status: 500 }, check: async (e) => assert.equal((await get(e)).status, 500) },
  'status 503': { fault: { kind: 'status', status: 503 }, check: async (e) => assert.equal((await get(e)).status, 503) },
  'retry-after': {
    fault: { kind: 'retry-after', retryAfter: 2 },
    check: async (e) => {
      const res = await get(e);
      assert.equal(res.status, 429);
      assert.equal(res.headers.get('retry-after'), '2');
    },
  },
  garbage: {
    fault: { kind: 'garbage' },
    check: async (e) => {
      const res = await get(e);
      assert.equal(res.status, 200);
      await assert.rejects(res.json());
    },
  },
  html200: {
    fault: { kind: 'html200' },
    check: async (e) => {
      const res = await get(e);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /text\/html/);
      assert.match(await res.text(), /<html>/);
    },
  },
  truncated: { fault: { kind: 'truncated' }, check: async (e) => assert.rejects((await get(e)).arrayBuffer()) },
  reset: { fault: { kind: 'reset' }, check: async (e) => assert.rejects(get(e)) },
};

for (const endpoint of Object.keys(urlFor)) {
  for (const [name, c] of Object.entries(cases)) {
    test(`fault ${name} at ${endpoint}`, async () => {
      emu.setFaults([{ endpoint: endpoint as Fault['endpoint'], ...c.fault, times: 1 }]);
      try {
        await c.check(endpoint);
        // times: 1 → the next request is served normally (a 403/405 is the endpoint's own answer, not the fault).
        const next = await get(endpoint);
        assert.ok([200, 403, 405].includes(next.status), `recovered, got ${next.status}`);
      } finally {
        emu.setFaults([]);
      }
    });
  }
}

test('faults can be set over HTTP for an emulator in another process', async () => {
  const set = await fetch(`${emu.urls.google}/__emulator/faults`, { method: 'POST', body: JSON.stringify({ faults: [{ endpoint: 'certs', kind: 'status', status: 503, times: 1 }] }) });
  assert.equal(set.status, 200);
  assert.equal((await get('certs')).status, 503);
  assert.equal((await get('certs')).status, 200);
  const log = (await (await fetch(`${emu.urls.google}/__emulator/requests`)).json()) as { endpoint: string; status: number }[];
  assert.ok(log.some((r) => r.endpoint === 'certs' && r.status === 503));
});
