// Builds docs/errors.md from every layer's error-code registry, so a user who meets a code
// in a log, an event, an API answer or a commit status can look it up in one place.
import { CONTROLLER_ERROR_CODES } from '../src/controller/errors.js';
import { SOURCE_ERROR_CODES } from '../src/source/errors.js';
import { MESH_COMPILE_CODES } from '../src/mesh/compile/codes.js';
import { DISCOVERY_ERROR_CODES } from '../src/mesh/discovery/errors.js';
import { CA_ERROR_CODES } from '../src/mesh/ca/errors.js';
import { PLATFORM_ERROR_CODES } from '../src/platform/platform.js';
import { LOCAL_PLATFORM_CODES } from '../src/platform/local/errors.js';
import { METRICS_ERROR_CODES } from '../src/metrics/errors.js';
import { ROLLOUT_ERROR_CODES } from '../src/rollout/errors.js';
import { ERROR_CODES as PROXY_ERROR_CODES } from '../src/proxy/errors.js';
import { SECURITY_ERROR_CODES } from '../src/proxy/security/errors.js';
import { DISCOVERY_CLIENT_ERROR_CODES } from '../src/proxy/discovery-client-errors.js';
import { CANARY_ERROR_CODES } from '../src/controller/canary/errors.js';
import { REPORT_ERROR_CODES } from '../src/report/errors.js';

export const REGISTRIES: { title: string; where: string; codes: Record<string, string> }[] = [
  {
    title: 'Controller and its API',
    where: 'src/controller/errors.ts',
    codes: CONTROLLER_ERROR_CODES,
  },
  {
    title: 'Canary controller',
    where: 'src/controller/canary/errors.ts',
    codes: CANARY_ERROR_CODES,
  },
  { title: 'Commit statuses and alerts', where: 'src/report/errors.ts', codes: REPORT_ERROR_CODES },
  { title: 'Git source and webhooks', where: 'src/source/errors.ts', codes: SOURCE_ERROR_CODES },
  { title: 'Mesh compiler', where: 'src/mesh/compile/codes.ts', codes: MESH_COMPILE_CODES },
  {
    title: 'Discovery server',
    where: 'src/mesh/discovery/errors.ts',
    codes: DISCOVERY_ERROR_CODES,
  },
  { title: 'Certificate authority', where: 'src/mesh/ca/errors.ts', codes: CA_ERROR_CODES },
  { title: 'Platform', where: 'src/platform/platform.ts', codes: PLATFORM_ERROR_CODES },
  { title: 'Local platform', where: 'src/platform/local/errors.ts', codes: LOCAL_PLATFORM_CODES },
  { title: 'Metric providers', where: 'src/metrics/errors.ts', codes: METRICS_ERROR_CODES },
  { title: 'Canary rollouts', where: 'src/rollout/errors.ts', codes: ROLLOUT_ERROR_CODES },
  { title: 'Proxy', where: 'src/proxy/errors.ts', codes: PROXY_ERROR_CODES },
  {
    title: 'Proxy security (mTLS, authorization, JWT)',
    where: 'src/proxy/security/errors.ts',
    codes: SECURITY_ERROR_CODES,
  },
  {
    title: 'Proxy discovery client',
    where: 'src/proxy/discovery-client-errors.ts',
    codes: DISCOVERY_CLIENT_ERROR_CODES,
  },
];

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();

export function renderErrorDocs(): string {
  const out = [
    '# Error codes',
    '',
    'Every error sluice reports carries a stable `SLUICE_...` code: in logs, events, API answers',
    '(`{"error": {"code", "message"}}`), CLI output and commit statuses. The diagnostics of',
    'manifests (`sluice validate`) are listed in [diagnostics.md](diagnostics.md).',
    '',
    'Generated from the registries in the source by `npm run gen:docs`; a test keeps it current.',
    '',
  ];
  for (const r of REGISTRIES) {
    out.push(
      `## ${r.title}`,
      '',
      `Registry: \`${r.where}\``,
      '',
      '| code | meaning |',
      '|---|---|',
    );
    for (const [code, meaning] of Object.entries(r.codes).sort(([a], [b]) => (a < b ? -1 : 1))) {
      out.push(`| \`${code}\` | ${cell(meaning)} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
