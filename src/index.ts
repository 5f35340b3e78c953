// Public library entry. The CLI's internals stay private; what is exported here is supported.
export { startEmulator, defaultScenario } from './emulator/index.ts';
export type { Emulator, EmulatorOptions, EmulatorUrls, Scenario, Fault, WrittenCredentials } from './emulator/index.ts';
export { IdcallError, CAUSE_CODES } from './core/errors.ts';
export type { CauseCode } from './core/errors.ts';
export type { CallReport, Step, Verdict, Source } from './core/report.ts';
