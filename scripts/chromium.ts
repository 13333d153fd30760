/**
 * How the tests and benchmarks start Chromium: Debian's /usr/bin/chromium
 * (Playwright cannot download its own browsers here), headless, with every
 * background service that would reach for the network turned off.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];
