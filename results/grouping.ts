/** Grouping runs by an attribute (`--group-by label|tag:KEY`): how the grouping and its groups are named. */
import type { RunGroup } from '../shared/store/queries.js';

/** A run attribute to group by: the label, or one of the tags given at run time (`--tag KEY=VALUE`). */
export type GroupBy = RunGroup;

/** The group of the runs without the attribute. */
export const NO_GROUP = '(none)';

export function formatGroupBy(groupBy: GroupBy): string {
  return groupBy.kind === 'label' ? 'label' : `tag:${groupBy.key}`;
}

export function describeGroupBy(groupBy: GroupBy): string {
  return groupBy.kind === 'label' ? 'run label' : `value of the tag ${groupBy.key}`;
}
