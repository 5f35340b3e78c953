// `idcall token`: the gcloud auth print-identity-token of every ADC source, with the same steps as `call`.
import { kindOfAudience } from '../target-kind.ts';
import { mintOptionsFor, type TokenOptions } from '../options.ts';
import type { Context } from '../context.ts';
import { IdcallError } from '../errors.ts';
import { obtainToken } from '../steps/obtain.ts';
import { conclude, REPORT_VERSION, sideOfStep, type TokenReport, type Verdict } from '../report.ts';
import { userTokenFix } from './verdict.ts';

/** What gcloud uses when no --audiences is given; Cloud Run accepts it too. */
import { GCLOUD_CLIENT_ID } from '../endpoints.ts';


export async function printableToken(ctx: Context, options: TokenOptions): Promise<{ report: TokenReport; token: string | null }> {
  const asked = options.audience !== undefined;
  // --audience exactly as given (a function URL keeps its path, a client ID is not a URL).
  const audience = asked ? options.audience!.trim() : GCLOUD_CLIENT_ID;
  const kind = options.targetKind ?? (asked ? kindOfAudience(audience) : undefined);
  // IAP needs the email claim: ask for it whatever --include-email says, and check it came.
  const iap = kind === 'iap';
  const obtained = await obtainToken(ctx, audience, mintOptionsFor(options, kind), asked ? audience : null, iap);
  const report: TokenReport = {
    version: REPORT_VERSION,
    command: 'token',
    ok: false,
    audience,
    target: asked ? { kind: kind ?? 'other', audience, audienceSource: 'flag' } : null,
    verdict: { code: 'OK', summary: '', fix: '' },
    source: obtained.source,
    shadowed: obtained.shadowed,
    steps: obtained.steps,
    token: obtained.verify ? { header: obtained.verify.header, claims: obtained.verify.claims } : null,
    exitCode: 0,
  };
  let error = obtained.error;
  const minted = obtained.minted;
  // A user's own token cannot carry the audience that was asked for: that is a failure to mint the right token.
  if (!error && minted?.userToken && asked) {
    const mint = report.steps.find((s) => s.id === 'mint')!;
    mint.status = 'fail';
    error = new IdcallError(
      'USER_TOKEN_AUDIENCE',
      `${minted.principal ?? 'This user'} is a user account: Google issues a user's ID token for the OAuth client (${String(obtained.verify?.claims.aud)}), never for ${audience}.`,
      userTokenFix(minted.principal, audience),
    );
  }
  const failed = report.steps.find((s) => s.status === 'fail' && s.id !== 'verify');
  const verdict: Verdict = error ? { code: error.code, summary: error.message, fix: error.fix } : { code: 'OK', summary: `ID token for ${audience}${minted?.principal ? ` as ${minted.principal}` : ''}.`, fix: '' };
  conclude(report, verdict, sideOfStep(failed?.id));
  return { report, token: report.ok ? (minted?.token ?? null) : null };
}
