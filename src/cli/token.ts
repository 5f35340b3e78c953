// `idcall token`: the token alone on stdout, diagnostics on stderr only when it fails or with --verbose.
import type { Argv } from 'yargs';
import { renderJson } from '../render/json.ts';
import { redact, registerSecret } from '../core/redact.ts';
import { detectStyle } from '../render/style.ts';
import { contextFor, type IO } from './io.ts';
import { resolveTokenOptions } from '../core/options.ts';
import { withSourceOptions, withTargetKind } from './options.ts';

export function tokenBuilder<T>(y: Argv<T>) {
  return withTargetKind(withSourceOptions(y))
    .option('audience', { type: 'string', describe: 'Audience of the ID token, e.g. https://hello-abc123-uc.a.run.app (default: gcloud\'s client id, as gcloud does)' })
    .option('include-email', { type: 'boolean', describe: 'Ask IAM to include email and email_verified when impersonating (always present for keys and the metadata server)' })
    .option('format', { choices: ['standard', 'full'] as const, describe: 'Metadata-server token format (default full)' })
    .option('decode', { type: 'boolean', describe: 'Print the decoded header and claims instead of the token' })
    .option('verbose', { alias: 'v', type: 'boolean', describe: 'Show the steps on stderr even when it works' })
    .example('curl -H "Authorization: Bearer $($0 token --audience https://hello-abc123-uc.a.run.app)" https://hello-abc123-uc.a.run.app', 'Use it with curl')
    .example('$0 token --audience https://svc.example --impersonate-service-account invoker@proj.iam.gserviceaccount.com --decode', 'See the claims an impersonated token carries');
}

export async function tokenCommand(argv: Record<string, unknown>, io: IO): Promise<number> {
  const options = resolveTokenOptions(argv);
  const ctx = contextFor(io, argv);
  // Loaded here, not at the top: yargs imports every command's builder, and only this command needs these.
  const { printableToken } = await import('../core/diagnosis/token.ts');
  const { report, token } = await printableToken(ctx, options).finally(ctx.stopProgress);
  registerSecret(token);
  if (argv.json) {
    // The token is what was asked for, so it is the one field not redacted; the rest is the report as always.
    const claims = report.token?.claims ?? null;
    const exp = typeof claims?.exp === 'number' ? claims.exp : null;
    const extra = report.ok && token ? { token, expiresAt: exp !== null ? new Date(exp * 1000).toISOString() : null, claims } : { token: null, expiresAt: null, claims: null };
    io.stdout.write(JSON.stringify({ ...JSON.parse(renderJson(report)), ...extra }, null, 2) + '\n');
    return report.exitCode;
  }
  if (!report.ok || argv.verbose) {
    // Only now: the table renderer (and cli-table3) is the one thing a successful run would load for nothing.
    const { renderSteps, renderVerdict } = await import('../render/table.ts');
    const style = detectStyle(io.stderr, io.env, typeof argv.color === 'boolean' ? argv.color : undefined);
    io.stderr.write(redact(`${renderSteps(report.steps, style)}\n\n${renderVerdict(report.verdict, style)}\n`));
  }
  if (report.ok && token) {
    // The one place a raw token reaches stdout: it is what this command is for.
    io.stdout.write(argv.decode ? renderJson(report.token) : `${token}\n`);
  }
  return report.exitCode;
}
