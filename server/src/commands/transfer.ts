/**
 * `collab-server migrate`, `export` and `import`: open the stores a command
 * names, run the transfer with a progress bar on stderr, print a summary,
 * and close the stores (flushing every write) whatever happens.
 */
import { SingleBar } from "cli-progress";
import { openStore } from "../app.ts";
import { configFromEnv } from "../config.ts";
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

/**
 * Opens the store a spec names: `leveldb:<directory>` or a
 * `postgres://` / `postgresql://` URL. Without a spec, the store the
 * environment configures (STORE, DATA_DIR, DATABASE_URL).
 */
export async function openStoreSpec(spec: string | undefined): Promise<DocumentStore> {
  if (spec === undefined) return openStore(configFromEnv());
  if (spec.startsWith("leveldb:")) {
    const dir = spec.slice("leveldb:".length);
    if (dir === "")
      throw new CollabError("CONFIG_INVALID", "leveldb: needs a directory, e.g. leveldb:./data");
    return LevelDbStore.open({ dir });
  }
  if (/^postgres(ql)?:\/\//.test(spec)) return PostgresStore.open({ url: spec });
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
  run: (stores: DocumentStore[]) => Promise<T>,
): Promise<T> {
  const stores: DocumentStore[] = [];
  try {
    for (const spec of specs) stores.push(await openStoreSpec(spec));
    return await run(stores);
  } finally {
    for (const store of stores) await store.close();
  }
}

function summary(verb: string, report: TransferReport): string {
  const unchanged = report.documents - report.written;
  return `${verb} ${report.documents} documents: ${report.written} written, ${unchanged} already up to date; ${report.versions} versions written; ${report.trash} trash entries written`;
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
      print(summary("migrated", await copyStore(source, target, bar.progress)));
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
      const report = await exportStore(store, file, bar.progress);
      print(
        `exported ${report.documents} documents, ${report.versions} versions and ${report.trash} trash entries to ${file}`,
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
      print(summary("imported", await importStore(store, file, bar.progress)));
    } finally {
      bar.stop();
    }
  });
}
