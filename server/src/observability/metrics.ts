/**
 * Prometheus metrics (prom-client) on a registry of the server's own, so two
 * servers in one process (tests) do not share counters.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** Live values the gauges read when scraped. */
export interface MetricSources {
  openConnections(): number;
  loadedDocuments(): number;
  pendingUpdates(): number;
  storeHealthy(): boolean;
}

export function createMetrics(sources: MetricSources) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "collab_process_" });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge("collab_connections_open", "Open WebSocket connections.", sources.openConnections);
  gauge("collab_documents_loaded", "Documents held in memory.", sources.loadedDocuments);
  gauge(
    "collab_store_pending_updates",
    "Updates accepted but not yet durable in the store.",
    sources.pendingUpdates,
  );
  gauge("collab_store_healthy", "1 while store writes succeed, 0 while they fail.", () =>
    sources.storeHealthy() ? 1 : 0,
  );
  return {
    registry,
    messagesIn: new Counter({
      name: "collab_messages_received_total",
      help: "WebSocket messages received.",
      registers: [registry],
    }),
    messagesOut: new Counter({
      name: "collab_messages_sent_total",
      help: "WebSocket messages sent.",
      registers: [registry],
    }),
    bytesIn: new Counter({
      name: "collab_bytes_received_total",
      help: "WebSocket payload bytes received.",
      registers: [registry],
    }),
    bytesOut: new Counter({
      name: "collab_bytes_sent_total",
      help: "WebSocket payload bytes sent.",
      registers: [registry],
    }),
    pausedReads: new Counter({
      name: "collab_reads_paused_total",
      help: "Times a connection's reading was paused because MAX_UNSTORED_BYTES of its updates waited to be stored.",
      registers: [registry],
    }),
    protocolErrors: new Counter({
      name: "collab_protocol_errors_total",
      help: "Connections closed for a malformed or oversized message.",
      labelNames: ["code"] as const,
      registers: [registry],
    }),
    storeWriteSeconds: new Histogram({
      name: "collab_store_write_seconds",
      help: "Time to make one batch of writes durable.",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    storeWriteBatchUpdates: new Histogram({
      name: "collab_store_write_batch_operations",
      help: "Operations per durable write batch (group commit).",
      buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000],
      registers: [registry],
    }),
    storeErrors: new Counter({
      name: "collab_store_errors_total",
      help: "Failed store write attempts.",
      registers: [registry],
    }),
    compactions: new Counter({
      name: "collab_compactions_total",
      help: "Document logs compacted into a snapshot.",
      registers: [registry],
    }),
    refusals: new Counter({
      name: "collab_document_refusals_total",
      help: "Document connections refused, by reason.",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: "collab_webhook_deliveries_total",
      help: "Webhook delivery outcomes (delivered, retried, failed, dropped), by event type.",
      labelNames: ["event", "outcome"] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
