/**
 * The user's access token. A link may carry one in its fragment
 * (`/d/notes#token=eyJ...`): the fragment never reaches the server's logs,
 * and the app moves the token to localStorage at once and removes it from the
 * address bar, so it does not stay in the history, in bookmarks or in a
 * screenshot of the page. Without a token the server decides (in anonymous
 * mode everything is allowed).
 */

export const TOKEN_KEY = "collab-docs:token";

/** The saved token, or null. */
export function storedToken(): string | null {
  const token = localStorage.getItem(TOKEN_KEY)?.trim();
  return token ? token : null;
}

/** Saves `token` (trimmed); null or an empty string forgets it. */
export function storeToken(token: string | null): void {
  const trimmed = token?.trim();
  if (trimmed) localStorage.setItem(TOKEN_KEY, trimmed);
  else localStorage.removeItem(TOKEN_KEY);
}

/**
 * Saves a `#token=...` from the address and rewrites the address without it (other fragment
 * parameters stay). Returns whether there was one.
 */
export function takeTokenFromFragment(): boolean {
  if (!location.hash.startsWith("#")) return false;
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token === null) return false;
  storeToken(token);
  params.delete("token");
  const rest = params.toString();
  history.replaceState(
    history.state,
    "",
    `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`,
  );
  return true;
}
