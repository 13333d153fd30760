/**
 * `collab-server migrate`, `export` and `import`: open the stores a command
 * names, run the transfer with a progress bar on stderr, print a summary,
 * and close the stores (flushing every write) whatever happens.
 */
import { SingleBar } from "cli-progress";
import { openAttachments, openStore } from "../app.ts";
import type { AttachmentStore } from "../attachments/store.ts";
import { configFromEnv, DEFAULT_CONFIG } from "../config.ts";
import { CollabError } from "../errors.ts";
import { LevelDbStore } from "../persistence/leveldb.ts";
import { PostgresStore } from "../persistence/postgres.ts";
import type { DocumentStore } from "../persistence/store.ts";
import {
  copyStore,
  exportStore,
  importStore,
  type Progress,
  type TransferReport,
} from "../persistence/transfer.ts";

/** A document store and the attachment store beside it. */
export interface Stores {
  readonly documents: DocumentStore;
  readonly attachments: AttachmentStore;
}

/**
 * Opens the stores a spec names: `leveldb:<directory>` or a
 * `postgres://` / `postgresql://` URL. Without a spec, the store the
 * environment configures (STORE, DATA_DIR, DATABASE_URL).
 */
export async function openStoreSpec(spec: string | undefined): Promise<Stores> {
  if (spec === undefined) {
    const config = configFromEnv();
    const documents = await openStore(config);
    return { documents, attachments: await openAttachments(config, documents) };
  }
  if (spec.startsWith("leveldb:")) {
    const dir = spec.slice("leveldb:".length);
    if (dir === "")
      throw new CollabError("CONFIG_INVALID", "leveldb: needs a directory, e.g. leveldb:./data");
    const documents = await LevelDbStore.open({ dir });
    return {
      documents,
      attachments: await openAttachments({ ...DEFAULT_CONFIG, dataDir: dir }, documents),
    };
  }
  if (/^postgres(ql)?:\/\//.test(spec)) {
    const documents = await PostgresStore.open({ url: spec });
    return { documents, attachments: documents.attachments() };
  }
  throw new CollabError(
    "CONFIG_INVALID",
    `unknown store ${JSON.stringify(spec.replace(/\/\/[^@/]*@/, "//***@"))}: use leveldb:<directory> or postgres://...`,
  );
}

/** A progress bar on stderr (plain lines when stderr is not a terminal). */
function progressBar(label: string): { progress: Progress; stop: () => void } {
  const bar = new SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} documents`,
      stream: process.stderr,
      noTTYOutput: true,
      notTTYSchedule: 2_000,
      hideCursor: true,
    },
    undefined,
  );
  let started = false;
  return {
    progress(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done);
      }
    },
    stop: () => bar.stop(),
  };
}

async function withStores<T>(
  specs: ReadonlyArray<string | undefined>,
  run: (stores: Stores[]) => Promise<T>,
): Promise<T> {
  const stores: Stores[] = [];
  try {
    for (const spec of specs) stores.push(await openStoreSpec(spec));
    return await run(stores);
  } finally {
    for (const store of stores) {
      await store.attachments.close();
      await store.documents.close();
    }
  }
}

function summary(verb: string, report: TransferReport): string {
  const unchanged = report.documents - report.written;
  return `${verb} ${report.documents} documents: ${report.written} written, ${unchanged} already up to date; ${report.versions} versions written; ${report.trash} trash entries written; ${report.attachments} attachments written`;
}

export async function migrate(
  from: string,
  to: string,
  print: (line: string) => void,
): Promise<void> {
  await withStores([from, to], async ([source, target]) => {
    if (source === undefined || target === undefined) return;
    const bar = progressBar("migrate");
    try {
      const report = await copyStore(source.documents, target.documents, bar.progress, {
        source: source.attachments,
        target: target.attachments,
      });
      print(summary("migrated", report));
    } finally {
      bar.stop();
    }
  });
}

export async function exportTo(
  file: string,
  from: string | undefined,
  print: (line: string) => void,
): Promise<void> {
  await withStores([from], async ([store]) => {
    if (store === undefined) return;
    const bar = progressBar("export");
    try {
      const report = await exportStore(store.documents, file, bar.progress, store.attachments);
      print(
        `exported ${report.documents} documents, ${report.versions} versions, ${report.trash} trash entries and ${report.attachments} attachments to ${file}`,
      );
    } finally {
      bar.stop();
    }
  });
}

export async function importFrom(
  file: string,
  to: string | undefined,
  print: (line: string) => void,
): Promise<void> {
  await withStores([to], async ([store]) => {
    if (store === undefined) return;
    const bar = progressBar("import");
    try {
      const report = await importStore(store.documents, file, bar.progress, store.attachments);
      print(summary("imported", report));
    } finally {
      bar.stop();
    }
  });
}
