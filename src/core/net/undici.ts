// The undici parts idcall uses, imported on first need through this one module. (A dynamic import of the
// CommonJS package itself would give the bundled CLI only a default export.)
export { Agent, buildConnector, ProxyAgent, request } from 'undici';
