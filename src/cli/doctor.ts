// `idcall doctor`: every credential check, no target called.
import type { Argv } from 'yargs';
import { renderJson } from '../render/json.ts';
import { contextFor, type IO } from './io.ts';
import { resolveDoctorOptions } from '../core/options.ts';
import { withSourceOptions, withTargetKind } from './options.ts';
import { styleFor } from './terminal.ts';

export function doctorBuilder<T>(y: Argv<T>) {
  return withTargetKind(withSourceOptions(y))
    .option('audience', { type: 'string', describe: 'Also mint an ID token for this audience' })
    .example('$0 doctor', 'What credentials does this machine have, and do they work?')
    .example('$0 doctor --audience https://hello-abc123-uc.a.run.app --json', 'Include an ID token for a service; machine-readable');
}

export async function doctorCommand(argv: Record<string, unknown>, io: IO): Promise<number> {
  const options = resolveDoctorOptions(argv);
  const ctx = contextFor(io, argv);
  const { doctor } = await import('../core/diagnosis/doctor/index.ts');
  const { renderDoctor } = await import('../render/doctor.ts');
  const report = await doctor(ctx, options).finally(ctx.stopProgress);
  io.stdout.write(argv.json ? renderJson(report) : renderDoctor(report, styleFor(io, argv)));
  return report.exitCode;
}
