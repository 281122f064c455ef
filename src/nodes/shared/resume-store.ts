import type { Node } from "./node-red";

const CONTEXT_KEY = "datasphere-last-event-id";
const SAVE_EVERY_MS = 1000;
/** A context store that does not answer within this is treated as empty (load) or skipped (save). */
const CONTEXT_DEADLINE_MS = 2000;

interface SavedPosition {
  package: string;
  lastEventId: string;
}

/** The first context store that keeps values across restarts (not the memory module), if any. */
export function persistentStore(settings: Record<string, unknown>): string | undefined {
  let stores: unknown;
  try {
    stores = settings.contextStorage;
  } catch {
    return undefined;
  }
  if (!stores || typeof stores !== "object") return undefined;
  for (const [name, store] of Object.entries(stores as Record<string, unknown>)) {
    if (store && typeof store === "object" && (store as { module?: unknown }).module !== "memory") return name;
  }
  return undefined;
}

/**
 * Where a subscription resumes after a restart: the last event id per node, in the node's context
 * (a persistent store when one is configured), saved at most once a second and on close.
 */
export class ResumeStore {
  private saveTimer?: NodeJS.Timeout;

  constructor(private readonly node: Pick<Node, "context">, private readonly store: string | undefined) {}

  /** The saved event id for this package, or undefined (none, another package, or the store failed). */
  load(forPackage: string): Promise<string | undefined> {
    return this.bounded<string | undefined>(undefined, (resolve) =>
      this.node.context().get(CONTEXT_KEY, this.store, (err, value) => {
        const saved = value as SavedPosition | undefined;
        resolve(!err && saved && saved.package === forPackage && typeof saved.lastEventId === "string" && saved.lastEventId ? saved.lastEventId : undefined);
      }),
    );
  }

  /** Saves within a second (one write per second however many events arrive). */
  saveSoon(position: () => SavedPosition | undefined): void {
    if (!this.saveTimer) this.saveTimer = setTimeout(() => void this.save(position()), SAVE_EVERY_MS);
  }

  save(position: SavedPosition | undefined): Promise<void> {
    this.cancel();
    if (!position || position.lastEventId === "") return Promise.resolve();
    return this.bounded<void>(undefined, (resolve) => this.node.context().set(CONTEXT_KEY, position, this.store, () => resolve()));
  }

  cancel(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
  }

  private bounded<T>(fallback: T, run: (resolve: (value: T) => void) => void): Promise<T> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(fallback), CONTEXT_DEADLINE_MS);
      const finish = (value: T) => {
        clearTimeout(timer);
        resolve(value);
      };
      try {
        run(finish);
      } catch {
        finish(fallback);
      }
    });
  }
}
