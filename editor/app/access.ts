/**
 * What the app shows when the server wants a (different) token: the
 * "Access denied" panel of a document page and the token form it shares with
 * the document list.
 */
import { explainDenial } from "../src/index.ts";
import { el, paragraph } from "./dom.ts";
import { storedToken, storeToken } from "./token.ts";

let forms = 0;

/** What a credential form asks for and where the credential goes. */
export interface CredentialForm {
  readonly label: string;
  readonly placeholder: string;
  readonly submit: string;
  /** Keeps the credential (somewhere of the caller's choosing), then goes on. */
  readonly use: (credential: string) => void;
}

/** A form to paste a credential, hidden as it is typed (out of screenshots and autofill). */
export function credentialForm(options: CredentialForm): HTMLFormElement {
  const id = `credential-input-${++forms}`;
  const form = el("form", "app-token");
  const label = el("label", "", options.label);
  label.htmlFor = id;
  const row = el("div", "app-token__row");
  const input = el("input", "");
  input.id = id;
  input.name = "credential";
  input.type = "password";
  input.autocomplete = "off";
  input.spellcheck = false;
  input.required = true;
  input.placeholder = options.placeholder;
  const submit = el("button", "app-button", options.submit);
  submit.type = "submit";
  row.append(input, submit);
  form.append(label, row);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const credential = input.value.trim();
    if (credential) options.use(credential);
  });
  return form;
}

/**
 * A form to paste an access token. On submit the token is saved (localStorage) and
 * `onToken` is called with it.
 */
export function tokenForm(onToken: (token: string) => void): HTMLFormElement {
  return credentialForm({
    label: "Access token",
    placeholder: "Paste the token you were given",
    submit: "Use this token",
    use: (token) => {
      storeToken(token);
      onToken(token);
    },
  });
}

/** A panel saying a page needs a credential: a heading, why, and the form to paste it. */
export function credentialPanel(
  heading: string,
  message: string,
  form: HTMLFormElement,
): HTMLElement {
  const panel = el("section", "app-panel app-denied");
  panel.append(el("h2", "", heading), paragraph("app-denied__message", message), form);
  return panel;
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
