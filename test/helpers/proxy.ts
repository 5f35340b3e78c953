// Start idcall's proxy against an emulator, the way `idcall proxy` does. It bypasses yargs, so the one IDCALL_*
// setting the tests use (the IAM URL) is passed as the flag it would have become.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import { run } from '../../src/cli/main.ts';
import { cachedMinter, createMinter } from '../../src/core/steps/minter.ts';
import { defaultContext } from '../../src/core/context.ts';
import { resolveSourceOptions } from '../../src/core/options.ts';
import { startProxy, type AccessLogEntry, type ProxyOptions, type RunningProxy } from '../../src/proxy/server.ts';
import type { TokenCache } from '../../src/core/steps/token-cache.ts';

/** Every access-log entry of every proxy started in this process, for secret canaries. */
export const allLogs: AccessLogEntry[] = [];

export async function proxyFor(env: Record<string, string | undefined>, options: Partial<ProxyOptions> & Pick<ProxyOptions, 'mode'>, flags: Record<string, unknown> = {}, now?: () => number): Promise<{ proxy: RunningProxy; cache: TokenCache; log: AccessLogEntry[] }> {
  // `now`: the wall clock the token cache reads, for tests that step through token lifetimes without waiting.
  const ctx = { ...defaultContext(env), ...(now ? { now } : {}) };
  const minter = await createMinter(ctx, resolveSourceOptions({ ...(env.IDCALL_IAM_URL ? { 'iam-url': env.IDCALL_IAM_URL } : {}), ...flags }));
  const cache = cachedMinter(minter);
  const log: AccessLogEntry[] = [];
  const proxy = await startProxy({ allowHosts: [], strict: false, upgradeHttp: false, headerName: 'Authorization', host: '127.0.0.1', port: 0, cache, onLog: (e) => (log.push(e), allLogs.push(e)), ...options });
  return { proxy, cache, log };
}

export interface Upstream {
  url: string;
  server: Server;
  seen: IncomingMessage[];
  close(): Promise<void>;
}

/** A plain upstream whose handler the test writes; it records every request it saw. */
export async function upstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Upstream> {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    server,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Run `idcall proxy …` in-process until the test is done with it; resolves with its URL and what it printed. */
export async function sidecar(args: string[], env: Record<string, string | undefined>) {
  const stderr = new PassThrough();
  let printed = '';
  stderr.on('data', (c) => (printed += c));
  let stop!: () => void;
  const until = new Promise<void>((r) => (stop = r));
  const exit = run(['proxy', ...args], { stdout: new PassThrough(), stderr, stdin: new PassThrough(), env }, { until });
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)[^\n]*(?:\(audience|no token could be minted)/.exec(printed) ?? /forward proxy on (http:\/\/[^\s]+) \(set/.exec(printed);
      if (m) resolve(m[1]!);
    };
    stderr.on('data', check);
    void exit.then((code) => reject(new Error(`exited ${code}: ${printed}`)));
  });
  return { url, printed: () => printed, stop: async () => (stop(), exit) };
}
