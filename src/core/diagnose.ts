// `idcall call`: discover → load → mint → verify → call → verdict, as one Report.
import { parseTargetUrl, refusePlainHttp } from './audience.ts';
import type { Context } from './context.ts';
import { asIdcallError, exitCodeFor, IdcallError } from './errors.ts';
import { REPORT_VERSION, type CallReport, type Step, type Verdict } from './report.ts';
import { obtainToken } from './obtain.ts';
import { displayProxy, proxyFor } from './proxy-env.ts';
import { skipped, step, type SourceOptions } from './steps.ts';
import type { CallResult } from './target.ts';
import { serviceFromUrl, verdictForResponse } from './verdict.ts';

export interface DiagnoseOptions extends SourceOptions {
  url: string;
  audience?: string;
  method?: string;
  headers?: [string, string][];
  data?: Buffer;
  headerName?: 'Authorization' | 'X-Serverless-Authorization';
  timeoutMs?: number;
  /** Bound for the whole exchange with the target (--max-time). */
  maxTimeMs?: number;
  /** Bytes of response body to keep in the report; Infinity for all. */
  bodyLimit?: number;
  /** Capture the whole body (for --output) while the report keeps only the excerpt. */
  /** Stream the whole body here as it arrives (-o); only the `bodyLimit` excerpt stays in memory. */
  openSink?: () => { stream: import('node:stream').Writable; close: boolean };
  allowInsecure?: boolean;
}

export interface DiagnoseOutcome {
  report: CallReport;
  /** The raw token, kept out of the report; only `--show-token` and the library ever see it. */
  token: string | null;
  /** The response body as received (up to bodyLimit). */
  body: Buffer<ArrayBufferLike>;
  /** Writing the body to its sink failed (code or message); the report is whole. */
  sinkError?: string;
}

export async function diagnose(ctx: Context, options: DiagnoseOptions): Promise<DiagnoseOutcome> {
  const steps: Step[] = [];
  const report: CallReport = {
    version: REPORT_VERSION,
    command: 'call',
    ok: false,
    url: options.url,
    audience: null,
    verdict: { code: 'OK', summary: '', fix: '' },
    source: null,
    shadowed: [],
    steps,
    token: null,
    response: null,
    exitCode: 0,
  };
  const finish = (verdict: Verdict, token: string | null = null, body: Buffer<ArrayBufferLike> = Buffer.alloc(0)): DiagnoseOutcome => {
    for (const id of ['discover', 'load', 'mint', 'verify', 'call'] as const) if (!steps.some((s) => s.id === id)) steps.push(skipped(id));
    report.verdict = verdict;
    report.exitCode = exitCodeFor(verdict.code, steps.find((s) => s.status === 'fail')?.id);
    report.ok = verdict.code === 'OK';
    return { report, token, body };
  };
  const fromError = (err: IdcallError): Verdict => ({ code: err.code, summary: err.message, fix: err.fix });

  let target;
  try {
    target = parseTargetUrl(options.url, options.audience);
    refusePlainHttp(target.url, Boolean(options.allowInsecure));
  } catch (err) {
    return finish(fromError(asIdcallError(err, 'USAGE_ERROR')));
  }
  report.url = target.url.toString();
  report.audience = target.audience;

  const obtained = await obtainToken(ctx, target.audience, options);
  steps.push(...obtained.steps);
  report.source = obtained.source;
  report.shadowed = obtained.shadowed;
  if (obtained.verify) report.token = { claims: obtained.verify.claims };
  if (obtained.error || !obtained.minted) return finish(fromError(obtained.error!));
  const { minted, verify } = obtained;

  const t0 = ctx.monotonic();
  // undici loads only when a target is called: it is a third of start-up for the other commands.
  const { callTarget } = await import('./target.ts');
  const proxy = proxyFor(target.url, ctx.env);
  let result: CallResult;
  try {
    ctx.progress?.('call', 'start');
    result = await callTarget({
      url: target.url,
      method: (options.method ?? 'GET').toUpperCase(),
      headers: options.headers ?? [],
      ...(options.data ? { body: options.data } : {}),
      token: minted.token,
      headerName: options.headerName ?? 'Authorization',
      timeoutMs: options.timeoutMs ?? 30_000,
      ...(options.maxTimeMs !== undefined ? { maxTimeMs: options.maxTimeMs } : {}),
      bodyLimit: options.bodyLimit ?? 200,
      ...(options.openSink ? { openSink: options.openSink } : {}),
      monotonic: ctx.monotonic,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      ...(proxy ? { proxy } : {}),
    });
  } catch (err) {
    ctx.progress?.('call', 'end');
    const error = asIdcallError(err, 'TARGET_UNREACHABLE');
    steps.push(step('call', 'fail', Math.round(ctx.monotonic() - t0), error.message));
    return finish(fromError(error), minted.token);
  }
  ctx.progress?.('call', 'end');
  const host = target.url.host;
  const principal = minted.principal ?? obtained.source?.principal ?? null;
  // The service called is the URL's; through a custom domain, the audience may be the only name of it (for grants).
  const calledService = serviceFromUrl(target.url.toString());
  const service = calledService ?? serviceFromUrl(target.audience);
  const audienceChoice = { origin: target.url.origin, fromFlag: options.audience !== undefined, calledService };
  const verdict = verdictForResponse({ status: result.status, host, ...(result.redirect ? { redirect: result.redirect } : {}) }, verify, principal, service, target.audience, audienceChoice);
  const t = result.timings;
  const timing = [proxy ? `through the proxy ${displayProxy(proxy)}` : t.connectMs !== undefined ? `connect ${t.connectMs} ms` : 'reused connection', `first byte ${t.firstByteMs} ms`].join(', ');
  const details = [
    `${(options.method ?? 'GET').toUpperCase()} ${target.url.toString()} with the token in ${result.tokenHeader}`,
    timing,
    ...Object.entries(result.headers)
      .filter(([k]) => ['www-authenticate', 'server', 'x-cloud-trace-context', 'content-type', 'location'].includes(k))
      .map(([k, v]) => `${k}: ${v}`),
  ];
  const status = result.status < 300 ? 'ok' : result.status < 400 ? 'warn' : 'fail';
  steps.push(step('call', status, Math.round(ctx.monotonic() - t0), `HTTP ${result.status}${result.redirect ? ` → ${result.redirect} (not followed)` : ''}`, details));
  report.response = {
    status: result.status,
    headers: result.headers,
    bodyExcerpt: result.body.subarray(0, options.bodyLimit ?? 200).toString('utf8'),
    bodyBytes: result.bodyBytes,
    ...(result.redirect ? { redirect: result.redirect } : {}),
    timings: result.timings,
  };
  const outcome = finish(verdict, minted.token, result.body);
  return result.sinkError ? { ...outcome, sinkError: result.sinkError } : outcome;
}
