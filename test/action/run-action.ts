/**
 * Runs the composite action in action.yml the way the Actions runner does, minus the steps
 * that need the network (setup-node, npm install): input defaults and `${{ }}` expressions
 * are evaluated against a `github` context built from the event, each `run:` script goes
 * through `bash --noprofile --norc -eo pipefail` with the step's `env:`, the GITHUB_* runner
 * variables, per-step GITHUB_OUTPUT files (read back into `steps.<id>.outputs`) and one
 * GITHUB_STEP_SUMMARY file; a step with no `if:` runs only while every step succeeded.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { parse } from 'yaml';

export const ACTION_DIR = join(import.meta.dirname, '..', '..');
/** Steps that fetch from the network; the test machine already has Node 20 and node_modules. */
const SKIPPED = new Set(['setup-node', 'install']);

interface Step {
  id?: string;
  name?: string;
  if?: string;
  uses?: string;
  shell?: string;
  run?: string;
  env?: Record<string, string>;
}
interface ActionFile {
  inputs: Record<string, { default?: string }>;
  outputs?: Record<string, { value: string }>;
  runs: { using: string; steps: Step[] };
}

export function loadAction(): ActionFile {
  return parse(readFileSync(join(ACTION_DIR, 'action.yml'), 'utf8')) as ActionFile;
}

export interface StepResult {
  id: string;
  /** null when the step was skipped by its `if:` or because it needs the network. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface ActionResult {
  /** The composite action's result: the first failing step's exit code, else 0. */
  code: number;
  steps: Record<string, StepResult>;
  /** Every step's stdout, in order (where workflow commands like ::error appear). */
  stdout: string;
  summary: string;
  outputs: Record<string, string>;
}

export interface RunActionOptions {
  workspace: string;
  eventName: 'pull_request' | 'push';
  event: Record<string, unknown>;
  /** The workflow's `with:`; missing inputs take the action's defaults. */
  with?: Record<string, string>;
  sha: string;
  ref?: string;
}

type Context = Record<string, unknown>;

function lookup(ctx: Context, path: string): unknown {
  let v: unknown = ctx;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** The small part of the Actions expression language that action.yml uses; throws on the rest. */
export function evaluate(expr: string, ctx: Context): unknown {
  const e = expr.trim();
  if (e.includes('||')) {
    for (const part of e.split('||')) {
      const v = evaluate(part, ctx);
      if (v) return v;
    }
    return '';
  }
  if (e.includes('&&')) return e.split('&&').every((part) => Boolean(evaluate(part, ctx)));
  if (e === '!cancelled()') return true;
  const eq = /^([\w.-]+)\s*(==|!=)\s*'([^']*)'$/.exec(e);
  if (eq) {
    const same = String(lookup(ctx, eq[1] as string) ?? '') === eq[3];
    return eq[2] === '==' ? same : !same;
  }
  if (/^[\w.-]+$/.test(e)) return lookup(ctx, e) ?? '';
  throw new Error(`expression not understood by the test runner: ${e}`);
}

/** `a ${{ x }} b` with each expression evaluated; a value that is one expression keeps its type. */
function interpolate(text: string, ctx: Context): string {
  return text.replace(/\$\{\{(.*?)\}\}/g, (_m, expr: string) => {
    const v = evaluate(expr, ctx);
    return v === undefined || v === null || v === false ? '' : String(v);
  });
}

function condition(step: Step, ctx: Context, failed: boolean): boolean {
  if (step.if === undefined) return !failed;
  const expr = /^\s*\$\{\{(.*)\}\}\s*$/s.exec(step.if)?.[1] ?? step.if;
  return Boolean(evaluate(expr, ctx));
}

function readOutputs(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = readFileSync(file, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2] as string, i + 1);
      out[heredoc[1] as string] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}

function bash(
  script: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['--noprofile', '--norc', '-eo', 'pipefail', script], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Runs the action's steps; the temporary runner folder is removed afterwards. */
export async function runAction(opts: RunActionOptions): Promise<ActionResult> {
  const action = loadAction();
  const temp = mkdtempSync(join(tmpdir(), 'sluice-action-'));
  try {
    const eventPath = join(temp, 'event.json');
    writeFileSync(eventPath, JSON.stringify(opts.event));
    const summaryPath = join(temp, 'step-summary.md');
    writeFileSync(summaryPath, '');
    const github = {
      event: opts.event,
      event_name: opts.eventName,
      sha: opts.sha,
      ref: opts.ref ?? 'refs/heads/main',
      workspace: opts.workspace,
      action_path: ACTION_DIR,
      repository: 'acme/gitops',
    };
    const ctx: Context = { github, inputs: {}, steps: {} };
    const inputs = ctx.inputs as Record<string, string>;
    for (const [name, spec] of Object.entries(action.inputs)) {
      inputs[name] = opts.with?.[name] ?? interpolate(String(spec.default ?? ''), ctx);
    }
    for (const name of Object.keys(opts.with ?? {}))
      if (!(name in action.inputs)) throw new Error(`action.yml has no input ${name}`);

    const runnerEnv: NodeJS.ProcessEnv = {
      PATH: [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter),
      HOME: process.env.HOME ?? temp,
      LANG: 'C.UTF-8',
      CI: 'true',
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: opts.workspace,
      GITHUB_ACTION_PATH: ACTION_DIR,
      GITHUB_EVENT_NAME: opts.eventName,
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_SHA: opts.sha,
      GITHUB_REF: github.ref,
      GITHUB_REPOSITORY: github.repository,
      GITHUB_STEP_SUMMARY: summaryPath,
      RUNNER_TEMP: temp,
      RUNNER_OS: 'Linux',
    };
    const steps: Record<string, StepResult> = {};
    let failed = false;
    let firstFailure = 0;
    let stdout = '';
    for (const [index, step] of action.runs.steps.entries()) {
      const id = step.id ?? `step${index}`;
      const stepsCtx = ctx.steps as Record<string, unknown>;
      if (step.uses || SKIPPED.has(id)) {
        steps[id] = { id, code: null, stdout: '', stderr: '' };
        stepsCtx[id] = { outcome: 'success', conclusion: 'success', outputs: {} };
        continue;
      }
      if (step.shell !== 'bash' || step.run === undefined)
        throw new Error(`step ${id}: only shell: bash run steps are supported`);
      if (!condition(step, ctx, failed)) {
        steps[id] = { id, code: null, stdout: '', stderr: '' };
        stepsCtx[id] = { outcome: 'skipped', conclusion: 'skipped', outputs: {} };
        continue;
      }
      const script = join(temp, `${id}.sh`);
      writeFileSync(script, interpolate(step.run, ctx));
      const outputFile = join(temp, `${id}.output`);
      writeFileSync(outputFile, '');
      const env: NodeJS.ProcessEnv = { ...runnerEnv, GITHUB_OUTPUT: outputFile };
      for (const [k, v] of Object.entries(step.env ?? {})) env[k] = interpolate(String(v), ctx);
      const r = await bash(script, opts.workspace, env);
      steps[id] = { id, ...r };
      stdout += r.stdout;
      const outcome = r.code === 0 ? 'success' : 'failure';
      stepsCtx[id] = { outcome, conclusion: outcome, outputs: readOutputs(outputFile) };
      if (r.code !== 0 && !failed) {
        failed = true;
        firstFailure = r.code;
      }
    }
    const outputs: Record<string, string> = {};
    for (const [name, spec] of Object.entries(action.outputs ?? {}))
      outputs[name] = interpolate(spec.value, ctx);
    return {
      code: firstFailure,
      steps,
      stdout,
      summary: readFileSync(summaryPath, 'utf8'),
      outputs,
    };
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}
