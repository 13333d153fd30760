/**
 * Who repairs the tables concurrent edits left malformed (extensions.ts,
 * `repairsWhen`, explains why only one editor may): of the editors present
 * that may edit, the one with the lowest awareness client id. Each editor
 * says in its awareness state whether it may edit now ({@link EDITING_FIELD});
 * the decision is made again whenever the awareness changes (someone came,
 * left, or started or stopped being able to edit), so when the editor that
 * repaired leaves, the next one takes over at once, not at the next edit.
 *
 * Ids are the awareness's own (`awareness.clientID`, the keys of its states),
 * never the document's: Yjs gives a document a new client id when it finds its
 * id in use, and the awareness keeps the one it started with.
 */
import type { Awareness } from "y-protocols/awareness";

/** The awareness field an editor sets to `true` while it may edit, and to `false` otherwise. */
export const EDITING_FIELD = "editing";

/**
 * Whether the editor with awareness client id `self` repairs tables, given every present
 * editor's awareness state (`states`, keyed by awareness client id; `self`'s own entry, if
 * any, is not looked at): it may edit (`editable`), and no other present editor whose state
 * says it may edit ({@link EDITING_FIELD} strictly `true`) has a lower id. Alone, an editor
 * that may edit repairs; one that may not never does (the server would refuse the repair).
 */
export function isRepairer(
  states: ReadonlyMap<number, Readonly<Record<string, unknown>>>,
  self: number,
  editable: boolean,
): boolean {
  if (!editable) return false;
  for (const [client, state] of states) {
    if (client < self && state[EDITING_FIELD] === true) return false;
  }
  return true;
}

/**
 * Decides again, on every `change` of `awareness`, whether this editor repairs tables
 * (`decide`, normally {@link isRepairer} on the awareness's states and own id), and calls
 * `becameRepairer` each time the answer turns from false to true: the editor taking over
 * repairs what is malformed now. `decide` is first asked when watching starts (that answer
 * calls nothing). Returns a function that stops watching.
 */
export function watchRepairer(
  awareness: Pick<Awareness, "on" | "off">,
  decide: () => boolean,
  becameRepairer: () => void,
): () => void {
  let repairs = decide();
  const onChange = () => {
    const now = decide();
    if (now && !repairs) becameRepairer();
    repairs = now;
  };
  awareness.on("change", onChange);
  return () => awareness.off("change", onChange);
}
