/** The merge report as text. */
import { plural } from '../../shared/cli.js';
import type { MergeReport } from '../write/merge.js';

/** The human-readable report: one block per input, then the totals. */
export function formatMergeReport(report: MergeReport): string {
  const lines = [`Merging into ${report.out}${report.created ? ' (created)' : ''}:`];
  for (const input of report.inputs) {
    if (input.refused) {
      lines.push(`  ${input.path}: REFUSED [${input.refused.code}] ${input.refused.reason}`);
      continue;
    }
    const parts = [`${plural(input.merged.length, 'run')} merged`, `${plural(input.duplicates.length, 'duplicate')} skipped`];
    if (input.refusedRuns.length > 0) parts.push(`${plural(input.refusedRuns.length, 'run')} REFUSED`);
    lines.push(`  ${input.path}: ${parts.join(', ')}`);
    for (const run of input.merged) {
      lines.push(`    + ${run.runId}${run.label === null ? '' : ` (${run.label})`}: ${plural(run.tests, 'test')}, ` +
        `${plural(run.segments, 'segment')}, ${plural(run.diffs, 'diff')}${run.finished ? '' : ', unfinished'}`);
    }
    for (const runId of input.duplicates) lines.push(`    = ${runId}: already in ${report.out}, identical`);
    for (const run of input.refusedRuns) lines.push(`    ! ${run.runId}: REFUSED [${run.code}] ${run.reason}`);
  }
  const t = report.totals;
  lines.push(`Total: ${plural(t.runsMerged, 'run')} merged (${plural(t.tests, 'test')}, ${plural(t.segments, 'segment')}, ${plural(t.diffs, 'diff')}), ` +
    `${plural(t.duplicatesSkipped, 'duplicate')} skipped, ${plural(t.runsRefused, 'run')} and ${plural(t.filesRefused, 'file')} refused.`);
  if (report.aborted) {
    const { input, runId, code, reason, notProcessed } = report.aborted;
    lines.push(`STOPPED at ${input}${runId === null ? '' : `, run ${runId}`}: [${code}] ${reason}`);
    if (notProcessed.length > 0) lines.push(`  not looked at: ${notProcessed.join(', ')}`);
  }
  if (!report.complete) lines.push('Not everything was merged: see REFUSED above.');
  return `${lines.join('\n')}\n`;
}
