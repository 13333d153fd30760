/**
 * What the app shows when the server wants a (different) token: the
 * "Access denied" panel of a document page and the token form it shares with
 * the document list.
 */
import { explainDenial } from "../src/index.ts";
import { storedToken, storeToken } from "./token.ts";

let forms = 0;

/**
 * A form to paste an access token. On submit the token is saved (localStorage) and
 * `onToken` is called with it.
 */
export function tokenForm(onToken: (token: string) => void): HTMLFormElement {
  const id = `token-input-${++forms}`;
  const form = document.createElement("form");
  form.className = "app-token";
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = "Access token";
  const row = document.createElement("div");
  row.className = "app-token__row";
  const input = document.createElement("input");
  input.id = id;
  input.name = "token";
  // A token is a credential: keep it out of screenshots and autofill.
  input.type = "password";
  input.autocomplete = "off";
  input.spellcheck = false;
  input.required = true;
  input.placeholder = "Paste the token you were given";
  const submit = document.createElement("button");
  submit.type = "submit";
  submit.className = "app-button";
  submit.textContent = "Use this token";
  row.append(input, submit);
  form.append(label, row);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    storeToken(token);
    onToken(token);
  });
  return form;
}

/**
 * The "Access denied" panel for a refusal `reason`: a heading, what the reason means for
 * people, and a token form. `onToken` runs after a new token is saved.
 */
export function deniedPanel(reason: string, onToken: (token: string) => void): HTMLElement {
  const panel = document.createElement("section");
  panel.className = "app-panel app-denied";
  panel.setAttribute("role", "alert");
  panel.setAttribute("aria-labelledby", "denied-title");
  const heading = document.createElement("h2");
  heading.id = "denied-title";
  heading.textContent = "Access denied";
  const message = document.createElement("p");
  message.className = "app-denied__message";
  const { problem, message: text } = explainDenial(reason);
  message.textContent = text;
  const hint = document.createElement("p");
  hint.className = "app-hint";
  hint.textContent =
    problem === "invalid-name" || problem === "deleted" || problem === "unavailable"
      ? "A different token will not help here, but you can still paste one."
      : storedToken() === null
        ? "If you were given an access token, paste it here. It is kept in this browser only."
        : "Paste a different access token to replace the one saved in this browser.";
  panel.append(heading, message, hint, tokenForm(onToken));
  return panel;
}
