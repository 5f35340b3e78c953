// `idcall token`: the gcloud auth print-identity-token of every ADC source, with the same steps as `call`.
import { normaliseAudience } from '../audience.ts';
import type { Context } from '../context.ts';
import { IdcallError } from '../errors.ts';
import { obtainToken } from '../steps/obtain.ts';
import { conclude, REPORT_VERSION, sideOfStep, type TokenReport, type Verdict } from '../report.ts';
import type { TokenOptions } from '../options.ts';
import { userTokenFix } from './verdict.ts';

/** What gcloud uses when no --audiences is given; Cloud Run accepts it too. */
import { GCLOUD_CLIENT_ID } from '../endpoints.ts';


export async function printableToken(ctx: Context, options: TokenOptions): Promise<{ report: TokenReport; token: string | null }> {
  const asked = options.audience !== undefined;
  const audience = asked ? normaliseAudience(options.audience!) : GCLOUD_CLIENT_ID;
  const obtained = await obtainToken(ctx, audience, options, asked ? audience : null);
  const report: TokenReport = {
    version: REPORT_VERSION,
    command: 'token',
    ok: false,
    audience,
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
