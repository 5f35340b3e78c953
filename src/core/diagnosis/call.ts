// `idcall call`: discover → load → mint → verify → call → verdict, as one Report.
import { parseTargetUrl, refusePlainHttp } from '../audience.ts';
import type { Context } from '../context.ts';
import { asIdcallError, IdcallError } from '../errors.ts';
import { conclude, REPORT_VERSION, sideOfStep, type CallReport, type Step, type Verdict } from '../report.ts';
import { redactedExcerpt } from '../redact.ts';
import { obtainToken } from '../steps/obtain.ts';
import { mintOptionsFor, type CallSettings, type SourceOptions } from '../options.ts';
import { runCall, runCallRaw, skipped, type CallPayload } from '../steps/steps.ts';
import { serviceFromUrl, verdictForResponse } from './verdict.ts';
import { frontEndVerdict, functionOf, unmarkedRefusal } from './front-ends.ts';
import { kindFromAnswer, type TargetInfo } from '../target-kind.ts';

/** The report's `target`: kind, audience and why (how the kind was decided stays internal). */
const publicTarget = (t: TargetInfo) => ({ kind: t.kind, audience: t.audience, audienceSource: t.audienceSource });

/**
 * IAP names its OAuth client in the redirect it gives a request without a token. One more request, announced in the
 * call step's details, learns it; nothing is sent with it.
 */
async function iapClientIdProbe(ctx: Context, url: URL, options: DiagnoseOptions, step: Step): Promise<string | undefined> {
  // The same route as the call itself (--connect-to, --cacert, HTTPS_PROXY), as a GET with no token and no body.
  const { maxTimeMs: _whole, ...settings } = options;
  const { result: probe } = await runCallRaw(ctx, url, null, { ...settings, method: 'GET', bodyLimit: 0 }, { headers: [], ...(options.ca ? { ca: options.ca } : {}) });
  try {
    if (!probe) throw new Error('no answer');
    const location = probe.headers.location;
    const clientId = location ? new URL(location, url).searchParams.get('client_id') : null;
    step.details.push(clientId ? `asked IAP once more, without a token, for its OAuth client: ${clientId}` : `asked IAP once more, without a token, for its OAuth client: it answered ${probe.status} without naming one`);
    return clientId && /\.apps\.googleusercontent\.com$/.test(clientId) ? clientId : undefined;
  } catch {
    step.details.push('asked IAP once more, without a token, for its OAuth client: no answer');
    return undefined;
  }
}

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
    target: null,
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
    target = parseTargetUrl(options.url, options.audience, options.targetKind);
    refusePlainHttp(target.url, options.allowInsecure);
  } catch (err) {
    return finish(fromError(asIdcallError(err, 'USAGE_ERROR')));
  }
  report.url = target.url.toString();
  report.audience = target.audience;
  report.target = publicTarget(target.target);

  // IAP needs the email claim: minting asks for it (includeEmail, format=full), and verify checks it came.
  const iap = target.target.kind === 'iap';
  const obtained = await obtainToken(ctx, target.audience, mintOptionsFor(options, target.target.kind), target.audience, iap);
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
  const headText = result.head.toString('utf8');
  // The answer is decisive (IAP and ESPv2 sign their refusals), unless the user named the kind.
  let info = target.target;
  const answered = kindFromAnswer(result.status, result.headers, headText);
  if (answered && info.kindSource !== 'flag' && answered !== info.kind) info = { ...info, kind: answered, kindSource: 'answer' };
  report.target = publicTarget(info);
  // The service called is the URL's; through a custom domain, the audience may be the only name of it (for grants).
  const calledService = serviceFromUrl(target.url.toString()) ?? (info.kind === 'cloud_functions' ? functionOf(target.url) : null);
  const service = calledService ?? serviceFromUrl(target.audience);
  const audienceChoice = { origin: target.url.origin, fromFlag: options.audience !== undefined, calledService };
  const iapClientId = info.kind === 'iap' && result.status === 401 ? await iapClientIdProbe(ctx, target.url, options, called.step) : undefined;
  const answer = { status: result.status, url: target.url, headers: result.headers, body: headText, target: info, principal, sourceType: obtained.source?.type ?? null, tokenHeader: result.tokenHeader, service, ...(iapClientId ? { iapClientId } : {}) };
  const generic = frontEndVerdict(answer) ?? verdictForResponse({ status: result.status, host, ...(result.redirect ? { redirect: result.redirect } : {}) }, verify, principal, service, target.audience, audienceChoice);
  const verdict = unmarkedRefusal(answer, generic, !(verify?.findings ?? []).some((f) => f.status === 'fail'));
  report.response = {
    status: result.status,
    headers: result.headers,
    // Redacted over the 4 KB head before the cut: a token the cut would split must not survive in part.
    bodyExcerpt: redactedExcerpt(result.head.length > result.body.length ? result.head : result.body, options.bodyLimit),
    bodyBytes: result.bodyBytes,
    ...(result.redirect ? { redirect: result.redirect } : {}),
    timings: result.timings,
  };
  // A 2xx whose body the user asked to keep but could not be written is not a success a script may trust.
  const kept = result.sinkError && verdict.code === 'OK' ? { code: 'OUTPUT_ERROR' as const, summary: `${host} answered ${result.status}, but the response body could not all be written (${result.sinkError}).`, fix: 'The call itself worked: free space where -o writes, or pick another destination (-o FILE, or -o - for stdout), and call again.' } : verdict;
  const outcome = finish(kept, minted.token, result.body);
  return result.sinkError ? { ...outcome, sinkError: result.sinkError } : outcome;
}
