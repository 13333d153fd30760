/**
 * How the editor's provider reconnects after its connection drops: at once,
 * then after a delay doubling from 1 s, with jitter (a random delay between
 * 1 s and the doubled one, so thousands of editors do not come back in step),
 * and never more than 8 s apart. @hocuspocus/provider's own default lets the
 * delay grow to 30 s, so after a server restart an editor could stay away for
 * half a minute; with this policy every editor is back within about 10 s of
 * the server (tested with 2,000 clients behind one address, [REL5]).
 * Plain provider users can pass the same options to their provider.
 */
export const RECONNECT = {
  initialDelay: 0,
  delay: 1_000,
  factor: 2,
  minDelay: 1_000,
  maxDelay: 8_000,
  jitter: true,
  maxAttempts: 0,
} as const;
