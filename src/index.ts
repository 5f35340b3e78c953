// Public library entry. The CLI's internals stay private; what is exported here is supported.
export { diagnose, getIdToken, idTokenFetch, idTokenInterceptor, clearIdTokenCache } from './lib/client.ts';
export type { CredentialOptions, IdToken, InjectOptions } from './lib/client.ts';
export { IdcallError, CAUSE_CODES } from './core/errors.ts';
export type { CauseCode } from './core/errors.ts';
export type { CallReport, Step, Verdict, Source } from './core/report.ts';
export { startEmulator, defaultScenario, issuedSecrets } from './emulator/index.ts';
export type { Emulator, EmulatorOptions, EmulatorUrls, Scenario, Fault, WrittenCredentials } from './emulator/index.ts';
