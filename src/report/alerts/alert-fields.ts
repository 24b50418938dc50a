/**
 * The facts an alert shows under its message, as Flagger's alertMetadata: the target, the
 * failed checks threshold, the progress deadline and how traffic is routed. Pure.
 */
import type { CanarySpec } from '../../api/flagger/canary.js';

type FieldSpec = Pick<CanarySpec, 'analysis' | 'progressDeadlineSeconds'> & {
  targetRef: { kind?: string; name: string };
};

export function alertFields(
  namespace: string,
  spec: FieldSpec,
  extra: { revision?: string } = {},
): { name: string; value: string }[] {
  const a = spec.analysis;
  const fields = [
    {
      name: 'Target',
      value: `${spec.targetRef.kind ?? 'Deployment'}/${spec.targetRef.name}.${namespace}`,
    },
  ];
  if (a) {
    fields.push({ name: 'Failed checks threshold', value: String(a.threshold) });
    fields.push({ name: 'Progress deadline', value: `${spec.progressDeadlineSeconds ?? 600}s` });
    const routing = a.match?.length
      ? `A/B Testing${a.iterations ? ` · iterations: ${a.iterations}` : ''}`
      : a.stepWeights?.length
        ? `Weight steps: ${a.stepWeights.join(',')} max: ${a.maxWeight ?? a.stepWeights.at(-1)}`
        : a.stepWeight
          ? `Weight step: ${a.stepWeight} max: ${a.maxWeight ?? 100}`
          : a.iterations
            ? `Blue/Green${a.mirror ? ' · mirrored' : ''} · iterations: ${a.iterations}`
            : undefined;
    if (routing) fields.push({ name: 'Traffic routing', value: routing });
  }
  if (extra.revision) fields.push({ name: 'Revision', value: extra.revision });
  return fields;
}
