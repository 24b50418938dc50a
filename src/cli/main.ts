/** The `sluice` command line. Exit codes follow INTERFACES.md; usage errors exit 2. */
import { Command, CommanderError, Option } from 'commander';
import { runValidate } from './validate.js';

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
