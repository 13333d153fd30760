/**
 * Wire constants of the Hocuspocus protocol (v4) as this server sees them.
 * A message is `varString address, varUint type, payload`; the address is the
 * document name, optionally followed by `\0sessionId`.
 */

/** Top-level message types. Mirrors Hocuspocus' `MessageType`. */
export const MessageType = {
  Sync: 0,
  Awareness: 1,
  Auth: 2,
  QueryAwareness: 3,
  SyncReply: 4,
  Stateless: 5,
  BroadcastStateless: 6,
  Close: 7,
  SyncStatus: 8,
  Ping: 9,
  Pong: 10,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Sub-types of a Sync message (y-protocols/sync). */
export const SyncType = { Step1: 0, Step2: 1, Update: 2 } as const;

/** Sub-types of an Auth message (@hocuspocus/common). */
export const AuthType = { Token: 0, PermissionDenied: 1, Authenticated: 2 } as const;

/** Splits a message address into the document name and the optional session id. */
export function splitAddress(address: string): { documentName: string; sessionId: string | null } {
  const at = address.indexOf("\0");
  return at === -1
    ? { documentName: address, sessionId: null }
    : { documentName: address.slice(0, at), sessionId: address.slice(at + 1) };
}
