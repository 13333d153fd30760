/** A small typed event emitter whose `on` returns its own unsubscribe function. */
// biome-ignore lint/suspicious/noExplicitAny: listener argument lists are checked per event through the map type
export type EventMap = Record<string, (...args: any[]) => void>;

export class Emitter<Events extends EventMap> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  /** Calls `listener` on every `event` until the returned function is called. */
  on<E extends keyof Events>(event: E, listener: Events[E]): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  emit<E extends keyof Events>(event: E, ...args: Parameters<Events[E]>): void {
    const set = this.listeners.get(event);
    if (set === undefined) return;
    for (const listener of set) listener(...args);
  }
}
