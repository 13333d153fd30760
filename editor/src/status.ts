/**
 * What the editor tells its user about the connection and saving, as values a
 * UI can render with an exhaustive switch.
 */

/** The connection, as the user should understand it. */
export type ConnectionState =
  | { readonly kind: "connecting" }
  | { readonly kind: "connected" }
  /** No connection; edits are kept on this device (when offline storage is on) and merge later. */
  | { readonly kind: "offline"; readonly keptOnDevice: boolean }
  /** The server refused this document. */
  | { readonly kind: "denied"; readonly reason: string };

/** Saving: `saved` only once the server has stored every local change. */
export type SaveState =
  | { readonly kind: "saving"; readonly pending: number }
  | { readonly kind: "saved" };

export function describeConnection(state: ConnectionState): string {
  switch (state.kind) {
    case "connecting":
      return "Connecting…";
    case "connected":
      return "Connected";
    case "offline":
      return state.keptOnDevice ? "Offline — changes are kept on this device" : "Offline";
    case "denied":
      return `Access denied (${state.reason})`;
  }
}

export function describeSave(state: SaveState): string {
  switch (state.kind) {
    case "saving":
      return "Saving…";
    case "saved":
      return "All changes saved";
  }
}
