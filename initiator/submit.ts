import { plural } from '../shared/cli.js';
import type { Store } from '../shared/store.js';
import { runToUpload, uploadCounts, type RunUpload } from '../shared/upload.js';
import { MbprobeError } from '../shared/wire/errors.js';
import { ANONYMIZED_PREFIX, anonymizeUpload, volunteerAddresses } from './anonymize.js';
import type { ControlClient } from './control-client.js';

/** The latest finished run of an initiator database (responder records are not runs to submit). */
export { latestFinishedRun } from '../shared/store/queries.js';

/**
 * `run --submit` and `submit`: a finished run goes to the responder's collection endpoint, after
 * the volunteer has been told what it contains. Addresses are truncated first unless the volunteer
 * says otherwise (initiator/anonymize.ts); the local database keeps the run as measured.
 */
export interface Submission {
  upload: RunUpload;
  /** What is sent, in words, for the volunteer. */
  notice: string;
}

export function prepareSubmission(store: Store, runId: string, options: { anonymize: boolean; destination: string }): Submission {
  const original = runToUpload(store, runId);
  const addresses = volunteerAddresses(original);
  const anonymized = options.anonymize ? anonymizeUpload(original, addresses) : undefined;
  const upload = anonymized?.upload ?? original;
  const counts = uploadCounts(upload);
  const hopRows = upload.tests.reduce((n, t) => n + (t.hops?.length ?? 0), 0);
  const ports = [...new Set(upload.tests.map((t) => t.port))].length;
  const names = [...new Set(upload.tests.map((t) => t.name))].length;
  const run = upload.run;
  const info = original.run.hostInfo;
  const about = [
    run.label ? `label "${run.label}"` : 'no label',
    Object.keys(run.tags).length ? `tags ${Object.entries(run.tags).map(([k, v]) => `${k}=${v}`).join(', ')}` : undefined,
    `platform ${String(info.platform ?? '?')}, kernel ${String(info.kernel ?? '?')}, interface ${String(info.iface ?? '?')}, mbprobe ${run.toolVersion}`,
  ].filter(Boolean).join('; ');
  const seenAs = typeof info.observedAddress === 'string' && info.observedAddress !== info.source ? info.observedAddress : undefined;
  let addressLine: string;
  if (anonymized) {
    const shown = anonymized.replaced.map((r) => `${r.address} as ${r.as}`).join(', ');
    addressLine = `your address${anonymized.replaced.length === 1 ? '' : 'es'} ${shown || '(none recorded)'}` +
      `${seenAs ? ` (${seenAs} is how the responder saw you)` : ''}: truncated to IPv4 /${ANONYMIZED_PREFIX.ipv4}, IPv6 /${ANONYMIZED_PREFIX.ipv6}` +
      ` in segment headers and texts; hostname not sent (--no-anonymize sends both whole)`;
  } else {
    addressLine = `your address${addresses.length === 1 ? '' : 'es'} ${addresses.join(', ') || '(none recorded)'} and hostname ` +
      `"${String(info.hostname ?? '')}" are sent whole (--no-anonymize)`;
  }
  const notice = [
    `Submitting run ${run.id} to ${options.destination}:`,
    `  results: ${counts.tests} tests (${names} test cases on ${plural(ports, 'port')}) with their verdicts and evidence, ` +
      `${counts.segments} segments as both ends sent and received them, ${counts.diffs} diff rows${hopRows ? `, ${hopRows} hop rows (what routers quoted of the copies locate sent)` : ''} (${Math.ceil(JSON.stringify(upload).length / 1024)} KiB)`,
    `  about this run: ${about}`,
    `  ${addressLine}`,
  ].join('\n');
  return { upload, notice };
}

/** Sends a prepared submission; errors say how to retry without measuring again. */
export async function sendSubmission(client: ControlClient, submission: Submission, retry: string): Promise<string> {
  try {
    const result = await client.submitRun(submission.upload);
    return result.outcome === 'stored'
      ? `The responder stored run ${result.runId} (${result.tests} tests). Thank you!`
      : `The responder already had run ${result.runId}; nothing new was stored.`;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new MbprobeError('SUBMIT_FAILED', `run ${submission.upload.run.id} was not submitted: ${reason}. It is kept in the local database; submit it later with: ${retry}`, { cause: error });
  }
}
