// `idcall proxy`: wire options to the proxy server, print the start-up line and the access log.
import type { Argv } from 'yargs';
import { isLoopback } from '../core/net/addresses.ts';
import { parseTargetUrl } from '../core/audience.ts';
import { describeTarget } from '../core/target-kind.ts';
import { usageError } from '../core/errors.ts';
import { listenOrExplain } from './listen.ts';
import { displayProxy, proxyFor } from '../core/net/proxy-env.ts';
import { redact } from '../core/redact.ts';
import { metadataHostsFrom, parseHostPort } from '../proxy/guards.ts';
import type { AccessLogEntry } from '../proxy/server.ts';
import { contextFor, type IO } from './io.ts';
import { canonicalHeaderName, DEFAULTS, resolveProxySettings, resolveSourceOptions, routingOf, setting } from '../core/options.ts';
import { withRouting, withSourceOptions, withTargetKind } from './options.ts';
import { readCaFile } from './cacert.ts';
import { defaultCaDir, leafCache, loadOrCreateCa } from '../proxy/ca-store.ts';

export function proxyBuilder<T>(y: Argv<T>) {
  return withRouting(withTargetKind(withSourceOptions(y)))
    .positional('action', { choices: ['ca-cert'] as const, describe: 'ca-cert: print the --intercept-tls CA certificate (PEM), generating it in --ca-dir if need be' })
    .option('target', { type: 'string', describe: 'Reverse mode: forward every request to this URL with a token for it' })
    .option('forward', { type: 'boolean', describe: 'Forward mode (HTTP_PROXY sidecar): absolute-form requests for allowed hosts get a token' })
    .option('listen', { type: 'string', describe: `Address to listen on (default ${DEFAULTS.reverseListen} reverse, ${DEFAULTS.forwardListen} forward; IDCALL_LISTEN)` })
    .option('audience', { type: 'string', describe: 'Reverse mode: token audience (custom domains, custom audiences)' })
    .option('allow-host', { type: 'string', array: true, describe: "Forward mode: hosts that get a token (default '*.run.app' '*.cloudfunctions.net')" })
    .option('strict', { type: 'boolean', describe: 'Forward mode: refuse hosts that are not allowed instead of passing them through (required to listen off loopback)' })
    .option('allow-origin', { type: 'string', array: true, describe: 'A web page origin (http://localhost:3000) whose requests from a browser get the token (reverse mode: may use the proxy; forward mode: may call allowed hosts); other pages get 403' })
    .option('allow-insecure', { type: 'boolean', describe: 'Allow sending tokens over plain http to a non-loopback host (--target http://…, --no-upgrade-http)' })
    .option('upgrade-http', { type: 'boolean', default: true, describe: 'Forward mode: send plain-http requests for allowed hosts upstream over https (--no-upgrade-http keeps http)' })
    .option('h2c', { type: 'boolean', describe: 'Reverse mode: also accept HTTP/2 cleartext (gRPC) on the same port, sent upstream over HTTP/2' })
    .option('header-name', { type: 'string', coerce: canonicalHeaderName, describe: `Header that carries the token (default ${DEFAULTS.headerName}; Proxy-Authorization for IAP; a client's own Authorization is always kept)` })
    .option('log-format', { choices: ['text', 'json', 'none'] as const, describe: `Access log on stderr (default ${DEFAULTS.logFormat})` })
    .option('upstream-timeout', { type: 'string', describe: `Upstream limit for response headers and idle body (default ${DEFAULTS.upstreamTimeoutMs / 1000}s)` })
    .option('intercept-tls', { type: 'boolean', describe: 'Forward mode: terminate TLS of CONNECTs to allowed hosts with a certificate from the proxy\'s CA and add the token inside (other hosts are tunnelled untouched)' })
    .option('ca-cert', { type: 'string', describe: 'With --intercept-tls: the CA certificate (PEM) to sign with, with --ca-key; otherwise one is generated in --ca-dir' })
    .option('ca-key', { type: 'string', describe: 'With --intercept-tls: the CA\'s private key (PEM)' })
    .option('ca-dir', { type: 'string', describe: 'Where the generated CA lives (default ~/.config/idcall/ca; directory 0700, key 0600)' })
    .option('shutdown-timeout', { type: 'string', describe: `How long SIGTERM waits for in-flight requests (default ${DEFAULTS.shutdownTimeoutMs / 1000}s)` })
    .example('$0 proxy --target https://hello-abc123-uc.a.run.app', 'Local port 8080 forwards to a private service')
    .example('$0 proxy --target https://grpc-abc123-uc.a.run.app --h2c & grpcurl -plaintext 127.0.0.1:8080 list', 'gRPC to a private service')
    .example("HTTP_PROXY=http://127.0.0.1:8000 … & $0 proxy --forward --allow-host '*.run.app'", 'Sidecar for unchanged clients')
    .example("$0 proxy --forward --intercept-tls & HTTPS_PROXY=http://127.0.0.1:8000 NODE_USE_ENV_PROXY=1 NODE_EXTRA_CA_CERTS=$($0 proxy ca-cert > ca.pem; echo ca.pem) node app.js", 'Sidecar for unchanged HTTPS clients');
}

export async function proxyCommand(argv: Record<string, unknown>, io: IO, until: Promise<unknown>): Promise<number> {
  const caDir = setting(argv, 'ca-dir') ?? defaultCaDir(io.env);
  if (argv.action === 'ca-cert') {
    // For a Dockerfile or an init container: the certificate only, never the key.
    const { ca } = await loadOrCreateCa({ ...caFiles(argv), caDir, allowHosts: (argv['allow-host'] as string[] | undefined) ?? DEFAULT_ALLOW_HOSTS, now: Date.now() });
    io.stdout.write(ca.certPem);
    return 0;
  }
  const forward = Boolean(argv.forward);
  if (argv['intercept-tls'] && !forward) throw usageError('--intercept-tls goes with --forward: it decrypts CONNECT tunnels, which only a forward proxy receives.', 'idcall proxy --forward --intercept-tls');
  const targetRaw = argv.target as string | undefined;
  if (forward === (targetRaw !== undefined)) throw usageError('Choose one mode: --target URL (reverse) or --forward (HTTP_PROXY sidecar).', 'idcall proxy --target https://svc-abc.a.run.app, or idcall proxy --forward');
  if (forward && argv.audience !== undefined) throw usageError('--audience goes with --target: in forward mode each host is its own audience.', 'Drop --audience, or use --target.');
  if (forward && argv.h2c) throw usageError('--h2c goes with --target: gRPC clients reach a forward proxy with CONNECT, which cannot carry a token.', 'Run a reverse proxy per gRPC service: idcall proxy --target URL --h2c');
  const target = targetRaw !== undefined ? parseTargetUrl(targetRaw).url : undefined;
  const allowHosts = (argv['allow-host'] as string[] | undefined) ?? DEFAULT_ALLOW_HOSTS;
  const upgradeHttp = argv['upgrade-http'] !== false;
  const settings = resolveProxySettings(argv, forward);
  const routing = routingOf(argv);
  const cacert = setting(argv, 'cacert');
  const ca = cacert !== undefined ? await readCaFile(cacert) : undefined;
  const { host, port } = parseListen(settings.listen);
  refuseInsecure({ target, forward, upgradeHttp, allowHosts, allowInsecure: Boolean(argv['allow-insecure']) });
  // An exposed forward proxy hands the workload's identity to anyone who reaches it: only with an allowlist.
  if (forward && !isLoopback(host) && !argv.strict) {
    throw usageError(`--listen ${host} is not loopback: a forward proxy reachable from the network relays for anyone, with this workload's tokens.`, `Add --strict (only --allow-host hosts are relayed), or listen on 127.0.0.1.`);
  }
  const format = settings.logFormat;
  // --audience exactly as given; otherwise the rule `call` uses (a Cloud Functions target keeps its function's name).
  const audience = target ? describeTarget(target, { ...(argv.audience !== undefined ? { audience: String(argv.audience) } : {}), ...(settings.targetKind ? { kind: settings.targetKind } : {}) }).audience : undefined;
  const ctx = contextFor(io);
  const source = resolveSourceOptions(argv);
  const interception = argv['intercept-tls'] ? await loadOrCreateCa({ ...caFiles(argv), caDir, allowHosts, now: Date.now() }) : undefined;
  const { cachedMinter, createMinter } = await import('../core/steps/minter.ts');
  const minter = await createMinter(ctx, source);
  const err = (line: string) => io.stderr.write(redact(line) + '\n');
  // The same credential warnings `call` and `token` show (a world-readable key, …).
  for (const w of minter.warnings) err(`idcall proxy: warning: ${w.text}. Run: ${w.fix}`);
  const cache = cachedMinter(minter, { onRefreshError: (aud, e) => err(`idcall proxy: background refresh for ${aud} failed (${(e as Error).message}); the current token is served until it expires`) });

  // A proxy allocates a little per request and keeps almost nothing: a larger young generation means fewer
  // scavenges for the same garbage (measured with npm run bench -- proxy / h2c).
  (await import('node:v8')).setFlagsFromString('--max-semi-space-size=32');
  const { startProxy } = await import('../proxy/server.ts');
  let listeningPort = port;
  const proxy = await listenOrExplain(`--listen ${host}:${port}`, '--listen HOST:PORT with another port', () =>
    startProxy({
      mode: forward ? 'forward' : 'reverse',
      ...(target ? { target } : {}),
      ...(audience ? { audience } : {}),
      allowHosts,
      strict: Boolean(argv.strict),
      upgradeHttp,
      allowOrigins: ((argv['allow-origin'] as string[] | undefined) ?? []).map(parseOrigin),
      metadataHosts: metadataHostsFrom(io.env),
      headerName: settings.headerName,
      host,
      port,
      cache,
      upstreamTimeoutMs: settings.upstreamTimeoutMs,
      shutdownTimeoutMs: settings.shutdownTimeoutMs,
      upstreamProxy: (origin) => upstreamProxy(origin, io.env, listeningPort),
      h2c: Boolean(argv.h2c),
      ...(routing.resolve.length || routing.connectTo.length || ca ? { routing: { ...routing, ...(ca ? { ca } : {}) } } : {}),
      ...(interception ? { interceptTls: leafCache(interception.ca, Date.now) } : {}),
      ...(format === 'none' ? {} : { onLog: (e: AccessLogEntry) => io.stderr.write(redact(format === 'json' ? JSON.stringify(e) : textLine(e)) + '\n') }),
    }),
  );

  listeningPort = Number(new URL(proxy.url).port);
  const identity = `${minter.source.principal ?? 'unknown principal'} (${minter.source.type} from ${minter.source.origin}${minter.source.path ? ` ${minter.source.path}` : ''})`;
  if (!isLoopback(host)) {
    const who = minter.source.principal ?? 'this identity';
    err(
      forward
        ? `idcall proxy: WARNING: listening on ${host}, not loopback. Anyone who can reach ${proxy.url} gets requests to ${allowHosts.join(', ')} signed as ${who}.`
        : `idcall proxy: WARNING: listening on ${host}, not loopback. Anyone who can reach ${proxy.url} can call ${target!.origin} as ${who}, with every permission that identity has there.`,
    );
  }
  if (target) {
    const aud = audience ?? target.origin;
    // Warm the cache so the first request does not wait, and so a broken setup shows at start.
    await cache.get(aud).then(
      () => {
        const via = upstreamProxy(target, io.env, listeningPort);
        err(`idcall proxy: listening on ${proxy.url}${argv.h2c ? ' (HTTP/1.1 and h2c)' : ''} → ${target.origin}${via ? ` through the proxy ${displayProxy(via)}` : ''} (audience ${aud}) as ${minter.source.principal ?? identity}`);
      },
      (e: Error & { code?: string; fix?: string }) => err(`idcall proxy: listening on ${proxy.url} → ${target.origin}, but no token could be minted yet [${e.code}]: ${e.message}${e.fix ? `\n  Fix: ${e.fix}` : ''}`),
    );
  } else {
    err(`idcall proxy: forward proxy on ${proxy.url} (set HTTP_PROXY=${proxy.url}); tokens for ${allowHosts.join(', ')} as ${identity}`);
    if (interception) {
      err(`idcall proxy: TLS interception on for ${allowHosts.join(', ')} (set HTTPS_PROXY=${proxy.url} and trust the CA ${interception.origin}${interception.generated ? ', generated now' : ''}; idcall proxy ca-cert prints it); other hosts are tunnelled untouched`);
    }
  }
  err(`idcall proxy: health ${proxy.url}/__idcall/health, metrics ${proxy.url}/__idcall/metrics`);
  await until;
  err('idcall proxy: shutting down, finishing in-flight requests');
  await proxy.close();
  return 0;
}

const DEFAULT_ALLOW_HOSTS = ['*.run.app', '*.cloudfunctions.net'];

/** Tokens in clear text only to loopback, unless the operator says this network is trusted (as `call` decides). */
function refuseInsecure(o: { target: URL | undefined; forward: boolean; upgradeHttp: boolean; allowHosts: string[]; allowInsecure: boolean }): void {
  if (o.allowInsecure) return;
  if (o.target && o.target.protocol === 'http:' && !isLoopback(o.target.hostname)) {
    throw usageError(`--target ${o.target.origin} is plain http to a host that is not loopback: every token would cross the network in clear text.`, 'Use the https:// URL, or pass --allow-insecure if this network is trusted.');
  }
  if (o.forward && !o.upgradeHttp) {
    const remote = o.allowHosts.filter((pattern) => {
      const parsed = parseHostPort(pattern);
      return !parsed || !isLoopback(parsed.hostname);
    });
    if (remote.length) {
      throw usageError(`--no-upgrade-http would send tokens for ${remote.join(', ')} over plain http.`, 'Drop --no-upgrade-http (plain-http requests then go upstream over https), or pass --allow-insecure if this network is trusted.');
    }
  }
}

function parseOrigin(value: string): string {
  try {
    const url = new URL(value);
    if ((url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value.replace(/\/$/, '')) return url.origin;
  } catch {
    // reported below
  }
  throw usageError(`--allow-origin ${JSON.stringify(value)} is not an origin.`, 'Give scheme://host[:port], for example --allow-origin http://localhost:3000.');
}

function textLine(e: AccessLogEntry): string {
  return `${e.time} ${e.method} ${e.host} ${e.path} ${e.status} ${e.upstreamMs === null ? '-' : `${e.upstreamMs}ms`} token=${e.token}${e.error ? ` error=${e.error}` : ''}`;
}

function parseListen(value: string): { host: string; port: number } {
  // A bare number is a port on loopback (`--listen 18099`), as with most dev servers.
  const match = /^\d+$/.test(value.trim()) ? [value, undefined, undefined, value.trim()] : /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value.trim());
  if (!match) throw usageError(`--listen ${JSON.stringify(value)} is not HOST:PORT.`, 'Use --listen 127.0.0.1:8080.');
  const port = Number(match[3]);
  if (port > 65535) throw usageError(`--listen port ${port} is out of range.`, 'Use a port from 0 to 65535.');
  return { host: match[1] ?? match[2] ?? '127.0.0.1', port };
}

/** HTTPS_PROXY/HTTP_PROXY for upstream requests, unless it names this proxy itself (a shared environment would loop). */
function upstreamProxy(origin: URL, env: IO['env'], ownPort: number): string | undefined {
  const proxy = proxyFor(origin, env);
  if (!proxy) return undefined;
  const url = new URL(proxy);
  return isLoopback(url.hostname) && Number(url.port || 80) === ownPort ? undefined : proxy;
}

function caFiles(argv: Record<string, unknown>): { caCert?: string; caKey?: string } {
  return { ...(argv['ca-cert'] !== undefined ? { caCert: String(argv['ca-cert']) } : {}), ...(argv['ca-key'] !== undefined ? { caKey: String(argv['ca-key']) } : {}) };
}
