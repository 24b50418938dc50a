/** PromQL syntax checking with Prometheus' own Lezer grammar. */
import { parser } from '@prometheus-io/lezer-promql';

/** Offset of the first syntax error in a PromQL expression, or -1 when it parses. */
export function promqlErrorOffset(query: string): number {
  if (query.trim() === '') return 0;
  const tree = parser.parse(query);
  let offset = -1;
  tree.iterate({
    enter(node) {
      if (offset >= 0) return false;
      if (node.type.isError) {
        offset = node.from;
        return false;
      }
      return undefined;
    },
  });
  return offset;
}
