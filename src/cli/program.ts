// Everything behind the entry's prepared answers (--version, --help), as one dynamic import: each import boundary
// is another chunk for the bundler, and each chunk another module for Node to load.
export { MIN_NODE_MAJOR, nodeTooOld } from '../core/runtime.ts';
export { processIO } from './io.ts';
export { run } from './main.ts';
