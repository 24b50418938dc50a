/** The commit status reporter of a configuration. */
import { ReportError } from '../errors.js';
import { GiteaReporter } from './gitea.js';
import { GitHubReporter } from './github.js';
import { GitLabReporter } from './gitlab.js';
import type { ReporterDeps } from './host.js';
import { OffReporter } from './off.js';
import type { CommitStatusConfig, CommitStatusReporter, HostConfigBase } from './reporter.js';

export const REPORTER_TYPES = ['github', 'gitlab', 'gitea', 'off'] as const;

/**
 * A reporter for `config.type`: github, gitlab, gitea or off. Throws SLUICE_REPORT_CONFIG for an
 * unknown type (never falls back to off), a missing token source, or a repository/API URL that
 * cannot be determined. `config` may come straight from user input: it is checked here.
 */
export function createCommitStatusReporter(
  config: CommitStatusConfig,
  deps: ReporterDeps = {},
): CommitStatusReporter {
  const type = (config as { type?: unknown } | undefined)?.type;
  switch (type) {
    case 'off':
      return new OffReporter();
    case 'github':
      return new GitHubReporter(hostConfig(config, type), deps);
    case 'gitlab':
      return new GitLabReporter(hostConfig(config, type), deps);
    case 'gitea':
      return new GiteaReporter(hostConfig(config, type), deps);
    default:
      throw new ReportError(
        'SLUICE_REPORT_CONFIG',
        `unknown commit status reporter type ${JSON.stringify(type)} (use ${REPORTER_TYPES.join(', ')})`,
      );
  }
}

function hostConfig(config: CommitStatusConfig, type: string): HostConfigBase {
  const c = config as Partial<HostConfigBase>;
  const t = c.token as { env?: unknown; file?: unknown } | undefined;
  const ok =
    t !== undefined &&
    ((typeof t.env === 'string' && t.env !== '') || (typeof t.file === 'string' && t.file !== ''));
  if (!ok)
    throw new ReportError(
      'SLUICE_REPORT_CONFIG',
      `the ${type} reporter needs token: { env: NAME } or { file: PATH }`,
    );
  for (const k of ['apiUrl', 'repository', 'sourceUrl'] as const)
    if (c[k] !== undefined && typeof c[k] !== 'string')
      throw new ReportError('SLUICE_REPORT_CONFIG', `the ${type} reporter's ${k} must be a string`);
  return c as HostConfigBase;
}
