/** A typed event emitter whose `on` returns its own unsubscribe function. */
// biome-ignore lint/suspicious/noExplicitAny: listener argument lists are checked per event through the map type
type EventMap = Record<string, (...args: any[]) => void>;

export class Emitter<Events extends EventMap> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

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
    for (const listener of this.listeners.get(event) ?? []) listener(...args);
  }

  clear(): void {
    this.listeners.clear();
  }
}
