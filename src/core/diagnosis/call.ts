// `idcall call`: discover → load → mint → verify → call → verdict, as one Report.
import { parseTargetUrl, refusePlainHttp } from '../audience.ts';
import type { Context } from '../context.ts';
import { asIdcallError, IdcallError } from '../errors.ts';
import { conclude, REPORT_VERSION, sideOfStep, type CallReport, type Step, type Verdict } from '../report.ts';
import { obtainToken } from '../steps/obtain.ts';
import type { CallSettings, SourceOptions } from '../options.ts';
import { runCall, skipped, type CallPayload } from '../steps/steps.ts';
import { serviceFromUrl, verdictForResponse } from './verdict.ts';

/** Complete options (core/options.ts resolves them): nothing below this line has a default of its own. */
export type DiagnoseOptions = SourceOptions & CallSettings & CallPayload;

export interface DiagnoseOutcome {
  report: CallReport;
  /** The raw token, kept out of the report; only `--show-token` and the library ever see it. */
  token: string | null;
  /** The response body as received (up to bodyLimit). */
  body: Buffer<ArrayBufferLike>;
  /** Writing the body to its sink failed (code or message); the report is whole. */
  sinkError?: string;
}

export async function diagnoseCall(ctx: Context, options: DiagnoseOptions): Promise<DiagnoseOutcome> {
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
    conclude(report, verdict, sideOfStep(steps.find((s) => s.status === 'fail')?.id));
    return { report, token, body };
  };
  const fromError = (err: IdcallError): Verdict => ({ code: err.code, summary: err.message, fix: err.fix });

  let target;
  try {
    target = parseTargetUrl(options.url, options.audience);
    refusePlainHttp(target.url, options.allowInsecure);
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

  const called = await runCall(ctx, target.url, minted.token, options, options);
  steps.push(called.step);
  if (!called.result) return finish(fromError(called.error!), minted.token);
  const result = called.result;
  const host = target.url.host;
  const principal = minted.principal ?? obtained.source?.principal ?? null;
  // The service called is the URL's; through a custom domain, the audience may be the only name of it (for grants).
  const calledService = serviceFromUrl(target.url.toString());
  const service = calledService ?? serviceFromUrl(target.audience);
  const audienceChoice = { origin: target.url.origin, fromFlag: options.audience !== undefined, calledService };
  const verdict = verdictForResponse({ status: result.status, host, ...(result.redirect ? { redirect: result.redirect } : {}) }, verify, principal, service, target.audience, audienceChoice);
  report.response = {
    status: result.status,
    headers: result.headers,
    bodyExcerpt: result.body.subarray(0, options.bodyLimit).toString('utf8'),
    bodyBytes: result.bodyBytes,
    ...(result.redirect ? { redirect: result.redirect } : {}),
    timings: result.timings,
  };
  const outcome = finish(verdict, minted.token, result.body);
  return result.sinkError ? { ...outcome, sinkError: result.sinkError } : outcome;
}
