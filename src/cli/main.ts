/** The `sluice` command line. Exit codes follow INTERFACES.md; usage errors exit 2. */
import { Command, CommanderError, Option } from 'commander';
import { runValidate } from './validate.js';
import { runDiff } from './diff.js';

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
    .action(
      async (opts: {
        from: string;
        to?: string;
        repo: string;
        path?: string;
        output: 'text' | 'json' | 'markdown';
        exitCode?: boolean;
      }) => {
        process.exitCode = await runDiff({
          from: opts.from,
          ...(opts.to ? { to: opts.to } : {}),
          repo: opts.repo,
          ...(opts.path ? { path: opts.path } : {}),
          output: opts.output,
          exitCode: opts.exitCode ?? false,
          write,
          writeErr: (t) => process.stderr.write(t),
        });
      },
    );

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
