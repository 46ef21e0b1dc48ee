import { statSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { CaptureStatistics } from '../shared/net/capture.js';
import type { ResponderService } from './service.js';

/**
 * GET /metrics on the control port, in Prometheus' text format (prom-client). The packet loop only
 * bumps plain integers (ResponderService.stats); they are read into the metrics when Prometheus
 * scrapes, so a flood costs prom-client nothing.
 */
export interface MetricsSources {
  service: ResponderService;
  /** The live capture's counts (kernel drops included); absent in tests without a capture. */
  capture?: () => CaptureStatistics;
  /** The database file (its -wal beside it is counted too). */
  databasePath?: string;
}

export interface ResponderMetrics {
  registry: Registry;
  /** Counts a finished run submission by HTTP status (201 stored, 200 already had, 400, 409, 413, 429, 503, ...). */
  upload(status: number): void;
}

/** A counter whose value is read from `read` at every scrape. */
function countedFrom(registry: Registry, name: string, help: string, read: () => number | undefined): void {
  new Counter({
    name, help, registers: [registry],
    collect() {
      const value = read();
      this.reset();
      if (value !== undefined) this.inc(value);
    },
  });
}

export function createMetrics(sources: MetricsSources): ResponderMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mbprobe_responder_' });
  const { service } = sources;
  const stats = service.stats;
  const segments = new Counter({
    name: 'mbprobe_responder_segments_total',
    help: 'Segments on the test ports, by what became of them: received (all), answered, unattributed (no registered test; never answered), malformed (attributed but unanswerable), rate_limited, budget_limited (the session had not sent enough bytes), behind (a test\'s, recorded but not answered: the packet loop was more than 100 ms behind the capture; its initiator runs the test again)',
    labelNames: ['outcome'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ outcome: 'received' }, stats.received);
      this.inc({ outcome: 'answered' }, stats.answered);
      this.inc({ outcome: 'unattributed' }, stats.unattributed);
      this.inc({ outcome: 'malformed' }, stats.malformed);
      this.inc({ outcome: 'rate_limited' }, stats.rateLimited);
      this.inc({ outcome: 'budget_limited' }, stats.budgetLimited);
      this.inc({ outcome: 'behind' }, stats.behind);
    },
  });
  void segments;
  countedFrom(registry, 'mbprobe_responder_segments_sent_total', 'Segments the responder sent (answers)', () => stats.sent);
  countedFrom(registry, 'mbprobe_responder_send_errors_total', 'Raw sends that failed', () => stats.sendErrors);
  countedFrom(registry, 'mbprobe_responder_segments_not_kept_total', 'Segments of a test beyond the per-test limit: answered, not recorded', () => stats.notKept);
  new Counter({
    name: 'mbprobe_responder_capture_dropped_total',
    help: 'Captured packets lost before the responder saw them: kernel (libpcap\'s ring buffer was full, PACKET_STATISTICS), queue (the responder\'s own queue was full)',
    labelNames: ['where'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const capture = sources.capture?.();
      if (!capture) return;
      this.inc({ where: 'queue' }, capture.queueDropped);
      if (capture.kernel) this.inc({ where: 'kernel' }, capture.kernel.drops);
    },
  });
  countedFrom(registry, 'mbprobe_responder_capture_packets_total', 'Packets that passed the capture filter, as the kernel counts them (dropped ones included)', () => sources.capture?.().kernel?.packets);
  new Gauge({
    name: 'mbprobe_responder_sessions', help: 'Open initiator sessions', registers: [registry],
    collect() {
      this.set(service.registry.allSessions().length);
    },
  });
  countedFrom(registry, 'mbprobe_responder_sessions_opened_total', 'Initiator sessions opened', () => stats.sessionsOpened);
  countedFrom(registry, 'mbprobe_responder_tests_collected_total', 'Tests whose segments an initiator collected', () => stats.testsCollected);
  new Gauge({
    name: 'mbprobe_responder_unattributed_kept', help: 'Unattributed segments kept whole (the most recent; bounded by --unattributed-keep)', registers: [registry],
    collect() {
      this.set(service.unattributed.kept);
    },
  });
  const uploads = new Counter({
    name: 'mbprobe_responder_uploads_total',
    help: 'Run submissions (POST /v1/runs) by HTTP status: 201 stored, 200 already stored, 400 invalid, 409 conflict, 413 too large, 429 too many, 503 database busy',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'mbprobe_responder_database_bytes', help: 'Size of the responder\'s SQLite database, its write-ahead log included', registers: [registry],
    collect() {
      if (!sources.databasePath) return;
      const size = (path: string): number => {
        try {
          return statSync(path).size;
        } catch {
          return 0;
        }
      };
      this.set(size(sources.databasePath) + size(`${sources.databasePath}-wal`));
    },
  });
  return { registry, upload: (status) => uploads.inc({ status: String(status) }) };
}
