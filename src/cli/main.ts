/** The `sluice` command line. Exit codes follow INTERFACES.md; usage errors exit 2. */
import { Command, CommanderError, Option } from 'commander';
import { runValidate } from './validate.js';
import { runDiff } from './diff.js';
import { runDemo } from './demo.js';
import { GATE_ACTIONS, runGate } from './gate.js';
import { runStatus } from './status.js';
import { parseDuration } from '../api/duration.js';
import { runProxyStatus } from './proxy-status.js';
import { runUp, UsageError, type UpOptions } from './up.js';
import { LOG_LEVELS } from './logger.js';

export function buildProgram(
  write: (text: string) => void = (t) => process.stdout.write(t),
): Command {
  const program = new Command('sluice')
    .description('GitOps progressive delivery with a bundled service mesh')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ writeOut: write, writeErr: (t) => process.stderr.write(t) });

  program
    .command('validate')
    .description('load every *.yaml/*.yml under the paths and print diagnostics')
    .argument('[path...]', 'files or folders', ['.'])
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['text', 'json', 'github'])
        .default('text'),
    )
    .addOption(
      new Option('--references <mode>', 'cross-object reference checks')
        .choices(['error', 'warn', 'off'])
        .default('error'),
    )
    .action(
      async (
        paths: string[],
        opts: { output: 'text' | 'json' | 'github'; references: 'error' | 'warn' | 'off' },
      ) => {
        process.exitCode = await runValidate({
          paths,
          output: opts.output,
          references: opts.references,
          write,
        });
      },
    );

  program
    .command('diff')
    .description('what would change, object by object and field by field, between two revisions')
    .requiredOption('--from <rev>', 'the revision to compare from (branch, tag, sha, HEAD~1)')
    .option('--to <rev>', 'the revision to compare to (default: the working tree)')
    .option('--repo <dir>', 'the git repository', '.')
    .option('--path <subdir>', 'the folder of the repository that holds the manifests')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['text', 'json', 'markdown'])
        .default('text'),
    )
    .option('--exit-code', 'exit 1 when something changes')
    .addOption(
      new Option('--references <mode>', 'cross-object reference checks')
        .choices(['error', 'warn', 'off'])
        .default('error'),
    )
    .action(
      async (opts: {
        from: string;
        to?: string;
        repo: string;
        path?: string;
        output: 'text' | 'json' | 'markdown';
        exitCode?: boolean;
        references: 'error' | 'warn' | 'off';
      }) => {
        process.exitCode = await runDiff({
          from: opts.from,
          ...(opts.to ? { to: opts.to } : {}),
          repo: opts.repo,
          ...(opts.path ? { path: opts.path } : {}),
          output: opts.output,
          exitCode: opts.exitCode ?? false,
          references: opts.references,
          write,
          writeErr: (t) => process.stderr.write(t),
        });
      },
    );

  program
    .command('up')
    .description('run the controller on a git repository (a URL or a local path)')
    .argument('[source]', 'git URL or local path', '.')
    .option('--branch <name>', 'branch to follow (default: the remote default branch)')
    .option('--tag <name>', 'tag to follow instead of a branch')
    .option('--commit <sha>', 'commit to pin instead of a branch')
    .option('--path <subdir>', 'folder of the repository that holds the manifests')
    .option('--interval <duration>', 'poll interval', '10s')
    .option('--state-dir <dir>', 'state directory', '.sluice')
    .option('--listen <host:port>', 'controller API address', '127.0.0.1:7070')
    .option(
      '--gateway-listen <host:port>',
      'ingress gateway address (with the local fleet)',
      '127.0.0.1:8080',
    )
    .option('--prometheus <url|auto|off>', 'metrics provider for canary analysis', 'auto')
    .option(
      '--gateway-credentials <dir>',
      'TLS certificates of Gateway credentialNames: <dir>/<name>/tls.crt and tls.key (default: <state-dir>/credentials)',
    )
    .option(
      '--access-log <fraction>',
      'fraction 0..1 of requests each proxy logs as a JSON line in its sidecar log (default 0: off)',
    )
    .option(
      '--scrape-interval <duration>',
      'scrape interval of the started Prometheus or the builtin provider',
      '5s',
    )
    .option(
      '--webhook-secret-file <file>',
      'secret that git webhooks are signed with (or SLUICE_WEBHOOK_SECRET)',
    )
    .option('--token-env <var>', 'HTTPS access token from this environment variable')
    .option('--token-file <file>', 'HTTPS access token from this file')
    .option(
      '--username <name>',
      'HTTPS user name (with --password-env/--password-file, or a token)',
    )
    .option('--password-env <var>', 'HTTPS password from this environment variable')
    .option('--password-file <file>', 'HTTPS password from this file')
    .option('--ssh-key <file>', 'SSH private key for ssh:// sources')
    .option('--known-hosts <file>', 'known_hosts file for ssh:// sources')
    .option(
      '--commit-status <host>',
      'report syncs and rollouts as commit statuses: github, gitlab, gitea or off',
      'off',
    )
    .option(
      '--commit-status-token-env <var>',
      'the commit-status API token from this environment variable',
    )
    .option('--commit-status-token-file <file>', 'the commit-status API token from this file')
    .option(
      '--commit-status-api <url>',
      'the host API (GitHub Enterprise, self-hosted GitLab or Gitea)',
    )
    .option('--commit-status-repo <owner/repo>', 'the repository (default: derived from SOURCE)')
    .option('--public-url <url>', "the controller's URL as users reach it (commit status links)")
    .addOption(
      new Option('--log-level <level>', 'log level').choices([...LOG_LEVELS]).default('info'),
    )
    .action(async (source: string, opts: Omit<UpOptions, 'source'>) => {
      try {
        process.exitCode = await runUp({ source, ...opts });
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        process.stderr.write(
          `sluice up: ${typeof code === 'string' && code.startsWith('SLUICE_') ? `${code}: ` : ''}${err instanceof Error ? err.message : String(err)}\n`,
        );
        process.exitCode = err instanceof UsageError ? 2 : 1;
      }
    });

  program
    .command('demo')
    .description('a complete local rollout: a healthy version promoted, a faulty one rolled back')
    .option('--prometheus <url|auto|off>', 'metrics provider for the analysis', 'auto')
    .option('--keep', "keep the demo's repository, state and logs")
    .action(async (opts: { prometheus: string; keep?: boolean }) => {
      process.exitCode = await runDemo({
        prometheus: opts.prometheus,
        keep: opts.keep ?? false,
        write,
      });
    });

  program
    .command('status')
    .description(
      'canaries: phase, weight, checks, revision; --watch to follow; --wait for a commit',
    )
    .argument('[name]', 'a canary (NAME or NAMESPACE/NAME) for its detail')
    .option('--api <url>', 'controller API', 'http://127.0.0.1:7070')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['text', 'json'])
        .default('text'),
    )
    .option('-w, --watch', 'redraw until Ctrl-C')
    .option('--wait', 'wait until every rollout started by --revision ends')
    .option('--revision <sha>', 'the commit whose rollouts --wait waits for')
    .option('--timeout <duration>', 'how long --wait waits', '15m')
    .option('--interval <duration>', 'how often to poll', '2s')
    .action(
      async (
        name: string | undefined,
        opts: {
          api: string;
          output: 'text' | 'json';
          watch?: boolean;
          wait?: boolean;
          revision?: string;
          timeout: string;
          interval: string;
        },
      ) => {
        const timeoutMs = parseDuration(opts.timeout);
        const intervalMs = parseDuration(opts.interval);
        if (timeoutMs === undefined || intervalMs === undefined || intervalMs < 100) {
          process.stderr.write(
            'sluice status: --timeout and --interval take durations such as 15m or 2s\n',
          );
          process.exitCode = 2;
          return;
        }
        const interrupted = new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
        process.exitCode = await runStatus({
          api: opts.api,
          ...(name ? { name } : {}),
          output: opts.output,
          watch: opts.watch ?? false,
          wait: opts.wait ?? false,
          ...(opts.revision ? { revision: opts.revision } : {}),
          timeoutMs,
          intervalMs,
          isTTY: Boolean(process.stdout.isTTY),
          write,
          writeErr: (t) => process.stderr.write(t),
          interrupted,
        });
        process.exit();
      },
    );

  for (const action of GATE_ACTIONS) {
    program
      .command(action)
      .description(`${action} a canary by hand (NAMESPACE/NAME)`)
      .argument('<canary>', 'NAMESPACE/NAME')
      .option('--api <url>', 'controller API', 'http://127.0.0.1:7070')
      .option('--token-file <file>', 'the API token (default: <state-dir>/api-token)')
      .option('--state-dir <dir>', "the controller's state directory", '.sluice')
      .action(
        async (target: string, opts: { api: string; tokenFile?: string; stateDir: string }) => {
          process.exitCode = await runGate({
            action,
            target,
            ...opts,
            write,
            writeErr: (t) => process.stderr.write(t),
          });
        },
      );
  }

  program
    .command('proxy-status')
    .description("each proxy's config version vs the latest: SYNCED, STALE, NACKED, DISCONNECTED")
    .option('--api <url>', 'controller API', 'http://127.0.0.1:7070')
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['text', 'json'])
        .default('text'),
    )
    .action(async (opts: { api: string; output: 'text' | 'json' }) => {
      process.exitCode = await runProxyStatus({
        ...opts,
        write,
        writeErr: (t) => process.stderr.write(t),
      });
    });

  program
    .command('proxy')
    .description('run one sidecar or gateway proxy (the fleet starts these; users rarely do)')
    .requiredOption('--bootstrap <file>', 'bootstrap file: identity, listeners, config source')
    .addOption(
      new Option('--log-level <level>', 'log level').choices([...LOG_LEVELS]).default('info'),
    )
    .action(async (opts: { bootstrap: string; logLevel: string }) => {
      // Loaded on use: the data plane (and its timers) stays out of every other command.
      const { runProxyCommand } = await import('../proxy/cli.js');
      process.exitCode = await runProxyCommand([
        '--bootstrap',
        opts.bootstrap,
        '--log-level',
        opts.logLevel,
      ]);
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; every other commander error is a usage error.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
  }
}

await main(process.argv);
