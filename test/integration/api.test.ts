/**
 * The REST API over a real socket: every endpoint and error status, live
 * edits and restores reaching a connected provider, versions, credentials,
 * webhooks from the running server, and every answer checked against the
 * OpenAPI description the server publishes.
 */
import { request as httpRequest } from "node:http";
import { Validator } from "@seriousme/openapi-schema-validator";
import { yXmlFragmentToProsemirrorJSON } from "@tiptap/y-tiptap";
import { beforeAll, describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { ROUTES } from "../../server/src/api/routes.ts";
import { mintToken } from "../../server/src/auth/tokens.ts";
import type { Config } from "../../server/src/config.ts";
import { MAX_NAMED_VERSIONS } from "../../server/src/documents/service.ts";
import { acknowledged, connect, synced } from "../helpers/clients.ts";
import { type Api, checkedApi, json, type OpenApi, publishedSpec } from "../helpers/openapi.ts";
import { startServer, startServerWithFaults } from "../helpers/server.ts";
import { signedReceiver } from "../helpers/webhook-receiver.ts";

const SOON = { timeout: 5_000, interval: 10 };
const SECRET = "token-secret-that-is-at-least-32-characters";
const API_SECRET = "api-secret-that-is-at-least-32-characters!";

const RICH = {
  type: "doc",
  content: [
    { type: "heading", attrs: { level: 1 }, content: [{ type: "text", text: "Plan" }] },
    {
      type: "paragraph",
      content: [
        { type: "text", text: "Ship " },
        { type: "text", marks: [{ type: "bold" }], text: "soon" },
      ],
    },
    {
      type: "bulletList",
      content: [
        {
          type: "listItem",
          content: [{ type: "paragraph", content: [{ type: "text", text: "one" }] }],
        },
      ],
    },
  ],
};

async function server(config: Partial<Config> = {}) {
  const running = await startServer({ config });
  return { ...running, api: checkedApi(running.address.url) };
}

/** The status of a request sent with its path exactly as given. */
function rawStatus(base: string, method: string, path: string, markdown?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      base,
      { method, path, headers: markdown === undefined ? {} : { "content-type": "text/markdown" } },
      (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode ?? 0));
      },
    );
    request.on("error", reject);
    request.end(markdown);
  });
}

function fragmentJSON(doc: Y.Doc) {
  return yXmlFragmentToProsemirrorJSON(doc.getXmlFragment("default"));
}

let spec: OpenApi;

beforeAll(async () => {
  spec = await publishedSpec();
});

describe("OpenAPI description", () => {
  it("[API1] is a valid OpenAPI 3.1 document that describes every route the server serves", async () => {
    const result = await new Validator().validate(
      structuredClone(spec) as unknown as Parameters<Validator["validate"]>[0],
    );
    expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
    expect(result.valid).toBe(true);
    const described = Object.entries(spec.paths).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(described.sort()).toEqual(ROUTES.map((route) => `${route.method} ${route.path}`).sort());
  });
});

describe("documents", () => {
  it("[API2] PUT creates from JSON, HTML and Markdown, GET returns every format, and the list shows them", async () => {
    const { api: a } = await server();
    const created = await a.call("PUT", "/documents/rich", json(RICH));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ created: true, document: { name: "rich" } });
    expect((await a.call("PUT", "/documents/rich", json(RICH))).status).toBe(200);

    const got = await a.call("GET", "/documents/rich");
    expect(got.body).toMatchObject({
      type: "doc",
      content: [{ type: "heading" }, { type: "paragraph" }, { type: "bulletList" }],
    });
    expect((await a.call("GET", "/documents/rich?format=html")).text).toContain("<h1>Plan</h1>");
    expect((await a.call("GET", "/documents/rich?format=markdown")).text).toContain("# Plan");
    expect((await a.call("GET", "/documents/rich?format=text")).text).toContain("Ship soon");
    const binary = await fetch(`${a.url}/api/v1/documents/rich?format=yjs`);
    expect(binary.headers.get("content-type")).toBe("application/octet-stream");
    const doc = new Y.Doc();
    Y.applyUpdate(doc, new Uint8Array(await binary.arrayBuffer()));
    expect(fragmentJSON(doc)).toMatchObject({ content: [{ type: "heading" }, {}, {}] });

    expect(
      (
        await a.call("PUT", "/documents/from-html", {
          body: "<p>Hi <em>there</em></p>",
          type: "text/html",
        })
      ).status,
    ).toBe(201);
    expect((await a.call("GET", "/documents/from-html?format=markdown")).text.trim()).toBe(
      "Hi *there*",
    );
    expect(
      (
        await a.call("PUT", "/documents/from-md", {
          body: "## Title\n\n- a\n- b\n",
          type: "text/markdown; charset=utf-8",
        })
      ).status,
    ).toBe(201);
    expect((await a.call("GET", "/documents/from-md?format=html")).text).toContain(
      "<h2>Title</h2>",
    );

    const page1 = await a.call("GET", "/documents?limit=2");
    expect(page1.body).toMatchObject({
      documents: [{ name: "from-html" }, { name: "from-md" }],
      next: "from-md",
    });
    const page2 = await a.call("GET", "/documents?limit=2&after=from-md");
    expect(page2.body).toMatchObject({ documents: [{ name: "rich" }], next: null });
    const prefixed = await a.call("GET", "/documents?prefix=from-");
    expect((prefixed.body as { documents: unknown[] }).documents).toHaveLength(2);
  });

  it("[API3] a REST edit reaches a connected provider live and is stored", async () => {
    const { api: a, address, server: s } = await server();
    const provider = connect({ url: address.wsUrl, name: "live" });
    await synced(provider);
    expect((await a.call("PUT", "/documents/live", json(RICH))).status).toBe(201);
    await vi.waitFor(
      () =>
        expect(fragmentJSON(provider.document)).toMatchObject({
          content: [{ type: "heading" }, {}, {}],
        }),
      SOON,
    );
    const appended = await a.call("POST", "/documents/live/content", {
      body: "Appended *line*",
      type: "text/markdown",
    });
    expect(appended.status).toBe(200);
    await vi.waitFor(
      () => expect(provider.document.getXmlFragment("default").toString()).toContain("Appended"),
      SOON,
    );
    // The provider's own edit and the API's merge; the store has both.
    provider.document.getXmlFragment("default").insert(0, [new Y.XmlElement("paragraph")]);
    await acknowledged(provider);
    const stored = await s.store.load("live");
    const copy = new Y.Doc();
    for (const update of stored?.updates ?? []) Y.applyUpdate(copy, update);
    expect(fragmentJSON(copy)).toEqual(fragmentJSON(provider.document));
  });

  it("[API4] DELETE disconnects clients with a reason and moves the document and its versions to the trash", async () => {
    const { api: a, address, server: s } = await server();
    await a.call("PUT", "/documents/doomed", json(RICH));
    await a.call("POST", "/documents/doomed/versions", json({ name: "v1" }));
    const provider = connect({ url: address.wsUrl, name: "doomed" });
    await synced(provider);
    const closed = new Promise<string>((resolve) =>
      provider.on("close", ({ event }: { event: { reason: string } }) => resolve(event.reason)),
    );
    const deleted = await a.call("DELETE", "/documents/doomed");
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ trash: { name: "doomed", versions: 1 } });
    expect(await closed).toBe("document-deleted");
    expect(await s.store.load("doomed")).toBeNull();
    expect(await s.store.listVersions("doomed")).toEqual([]);
    expect((await s.store.listTrash({ limit: 10 })).map((entry) => entry.name)).toEqual(["doomed"]);
    expect((await a.call("GET", "/documents/doomed")).status).toBe(404);
    expect((await a.call("DELETE", "/documents/doomed")).status).toBe(404);
  });

  it("[API5] errors: every status with the one JSON shape", async () => {
    const { api: a } = await server({ maxBodyBytes: 1024 });
    const expectError = async (promise: ReturnType<Api["call"]>, status: number, code: string) => {
      const result = await promise;
      expect(result.status).toBe(status);
      expect(result.body).toMatchObject({ error: { code, message: expect.any(String) } });
      return result;
    };
    await expectError(a.call("GET", "/documents/missing"), 404, "not_found");
    // "." and ".." are names like any other, not path segments (sent as is: fetch would
    // resolve them, as browsers do; curl --path-as-is does not).
    expect(await rawStatus(a.url, "PUT", "/api/v1/documents/%2e%2e", "dots")).toBe(201);
    expect(await rawStatus(a.url, "GET", "/api/v1/documents/..?format=text")).toBe(200);
    expect(await rawStatus(a.url, "DELETE", "/api/v1/documents/%2E%2E")).toBe(200);
    await expectError(a.call("GET", "/nowhere"), 404, "not_found");
    await expectError(a.call("GET", "/documents/%E0%A4%A"), 400, "invalid_name");
    await expectError(a.call("GET", "/documents/%20%20"), 400, "invalid_name");
    await expectError(a.call("GET", "/documents/x?format=pdf"), 400, "bad_request");
    await expectError(a.call("GET", "/documents?limit=0"), 400, "bad_request");
    await expectError(
      a.call("PUT", "/documents/x", { body: "{not json", type: "application/json" }),
      400,
      "invalid_content",
    );
    const unknown = await expectError(
      a.call("PUT", "/documents/x", json({ type: "doc", content: [{ type: "marquee" }] })),
      400,
      "invalid_content",
    );
    expect(JSON.stringify(unknown.body)).toContain("marquee");
    await expectError(
      a.call("PUT", "/documents/x", { body: "hello", type: "text/plain" }),
      415,
      "unsupported_media_type",
    );
    await expectError(
      a.call("PUT", "/documents/x", { body: "x".repeat(2048), type: "text/markdown" }),
      413,
      "payload_too_large",
    );
    await expectError(
      a.call("POST", "/documents/missing/content", { body: "hi", type: "text/markdown" }),
      404,
      "not_found",
    );
    await expectError(a.call("PATCH", "/documents/x"), 405, "method_not_allowed");
    const createOnly = { ...json(RICH), headers: { "if-none-match": "*" } };
    expect((await a.call("PUT", "/documents/only-once", createOnly)).status).toBe(201);
    await expectError(
      a.call("PUT", "/documents/only-once", {
        body: "# replaced",
        type: "text/markdown",
        headers: { "if-none-match": "*" },
      }),
      412,
      "precondition_failed",
    );
    expect((await a.call("GET", "/documents/only-once")).body).toMatchObject(RICH);
    await a.call("PUT", "/documents/x", json(RICH));
    await a.call("POST", "/documents/x/versions", json({ name: "same" }));
    await expectError(
      a.call("POST", "/documents/x/versions", json({ name: "same" })),
      409,
      "conflict",
    );
    await expectError(
      a.call("POST", "/documents/x/versions", json({ label: "wrong field" })),
      400,
      "bad_request",
    );
    await expectError(a.call("GET", "/documents/x/versions/nope"), 404, "not_found");
    // Nothing about the failed requests reached the document.
    expect((await a.call("GET", "/documents/x")).body).toMatchObject(RICH);
  });
});

describe("races and failures", () => {
  it("[API10] edits, versions and a delete of one document never interleave: a delete stays a delete", async () => {
    const { api: a, server: s } = await server();
    for (let round = 0; round < 15; round++) {
      const name = `racing-${round}`;
      await a.call("PUT", `/documents/${name}`, { body: "# old", type: "text/markdown" });
      const results = await Promise.all([
        a.call("POST", `/documents/${name}/content`, { body: "new", type: "text/markdown" }),
        a.call("POST", `/documents/${name}/versions`, json({ name: "v" })),
        a.call("DELETE", `/documents/${name}`),
      ]);
      expect(results[2]?.status).toBe(200);
      // Whatever ran first, nothing outlives the delete.
      expect((await a.call("GET", `/documents/${name}`)).status).toBe(404);
      expect(await s.store.load(name)).toBeNull();
      expect(await s.store.listVersions(name)).toEqual([]);
    }
  });

  it("[API6] a version can be restored again and again, and the state each restore replaced is kept", async () => {
    const { api: a } = await server({ maxAutoVersions: 0 });
    await a.call("PUT", "/documents/twice", { body: "one", type: "text/markdown" });
    const { id } = (await a.call("POST", "/documents/twice/versions", json({ name: "one" })))
      .body as { id: string };
    for (const text of ["two", "three"]) {
      await a.call("PUT", "/documents/twice", { body: text, type: "text/markdown" });
      const restored = await a.call("POST", `/documents/twice/versions/${id}/restore`);
      expect(restored.status).toBe(200);
      const backup = (restored.body as { backup: { id: string } }).backup.id;
      expect((await a.call("GET", `/documents/twice/versions/${backup}?format=text`)).text).toBe(
        text,
      );
    }
  });

  it("[API12] a document keeps at most MAX_NAMED_VERSIONS named versions; deleting one makes room", async () => {
    const { api: a } = await server({ store: "memory" });
    await a.call("PUT", "/documents/many", { body: "x", type: "text/markdown" });
    let last = "";
    for (let i = 0; i < MAX_NAMED_VERSIONS; i++) {
      const saved = await a.call("POST", "/documents/many/versions", json({ name: `v${i}` }));
      expect(saved.status).toBe(201);
      last = (saved.body as { id: string }).id;
    }
    const refused = await a.call("POST", "/documents/many/versions", json({ name: "one more" }));
    expect(refused.status).toBe(409);
    expect(JSON.stringify(refused.body)).toContain("delete some first");
    expect((await a.call("DELETE", `/documents/many/versions/${last}`)).status).toBe(204);
    expect(
      (await a.call("POST", "/documents/many/versions", json({ name: "one more" }))).status,
    ).toBe(201);
  });

  it("[API11] while the store is failing an API edit is answered 503 instead of waiting", async () => {
    const { address, faults } = await startServerWithFaults({ retryMs: 50 });
    const a = checkedApi(address.url);
    await a.call("PUT", "/documents/failing", { body: "one", type: "text/markdown" });
    faults.remaining = 1_000_000;
    const provider = connect({ url: address.wsUrl, name: "failing" });
    await synced(provider);
    provider.document.getText("t").insert(0, "x");
    await vi.waitFor(async () => {
      const ready = await fetch(`${address.url}/readyz`);
      expect(ready.status).toBe(503);
    }, SOON);
    const refused = await a.call("PUT", "/documents/failing", {
      body: "two",
      type: "text/markdown",
    });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: { code: "unavailable" } });
    faults.remaining = 0;
  });
});

describe("hostile content", () => {
  it("[API9] Markdown that is slow to parse is refused after a deadline, and syncing never waits for it", async () => {
    const { api: a, address } = await server();
    const provider = connect({ url: address.wsUrl, name: "busy" });
    await synced(provider);
    const order: string[] = [];
    // marked takes quadratic time on "a *" runs: about a minute for this on the event loop.
    const slow = a
      .call("PUT", "/documents/slow", { body: "a *".repeat(40_000), type: "text/markdown" })
      .then((result) => {
        order.push("put");
        return result;
      });
    provider.document.getText("t").insert(0, "typed while the server parses");
    await acknowledged(provider);
    order.push("acknowledged");
    const result = await slow;
    expect(order).toEqual(["acknowledged", "put"]);
    expect(result.status).toBe(400);
    expect(JSON.stringify(result.body)).toContain("took over");
    expect((await a.call("GET", "/documents/slow")).status).toBe(404);
    // The parser recovers for the next request.
    expect(
      (await a.call("PUT", "/documents/fine", { body: "# ok", type: "text/markdown" })).status,
    ).toBe(201);
  });
});

describe("versions", () => {
  it("[API6] named versions are saved, listed, read in every format, and restored live for connected editors", async () => {
    const { api: a, address } = await server();
    await a.call("PUT", "/documents/story", { body: "# First draft", type: "text/markdown" });
    const saved = await a.call("POST", "/documents/story/versions", json({ name: "Draft 1" }));
    expect(saved.status).toBe(201);
    const version = saved.body as { id: string; name: string; kind: string };
    expect(version).toMatchObject({ name: "Draft 1", kind: "named" });

    const provider = connect({ url: address.wsUrl, name: "story" });
    await synced(provider);
    await a.call("PUT", "/documents/story", {
      body: "# Second draft\n\nMore.",
      type: "text/markdown",
    });
    await vi.waitFor(
      () => expect(provider.document.getXmlFragment("default").toString()).toContain("Second"),
      SOON,
    );

    expect(
      (await a.call("GET", `/documents/story/versions/${version.id}?format=markdown`)).text.trim(),
    ).toBe("# First draft");
    const restored = await a.call("POST", `/documents/story/versions/${version.id}/restore`);
    expect(restored.status).toBe(200);
    expect(restored.body).toMatchObject({ restored: { id: version.id }, backup: { kind: "auto" } });
    await vi.waitFor(
      () => expect(provider.document.getXmlFragment("default").toString()).not.toContain("Second"),
      SOON,
    );
    expect((await a.call("GET", "/documents/story?format=markdown")).text.trim()).toBe(
      "# First draft",
    );

    const extra = await a.call("POST", "/documents/story/versions", json({ name: "to delete" }));
    const extraId = (extra.body as { id: string }).id;
    expect((await a.call("DELETE", `/documents/story/versions/${extraId}`)).status).toBe(204);
    expect((await a.call("DELETE", `/documents/story/versions/${extraId}`)).status).toBe(404);
    const list = (await a.call("GET", "/documents/story/versions")).body as {
      versions: Array<{ name: string | null; kind: string }>;
    };
    expect(list.versions.map((v) => v.kind)).toEqual(["auto", "named"]);
    expect(list.versions[0]?.name).toContain("Before restoring Draft 1");
    // The backup holds what the restore replaced, so the restore can be undone.
    const backupId = (restored.body as { backup: { id: string } }).backup.id;
    expect(
      (await a.call("GET", `/documents/story/versions/${backupId}?format=text`)).text,
    ).toContain("Second draft");
  });

  it("[API7] automatic versions are saved while a document is edited, and the oldest beyond the limit go", async () => {
    const { api: a, address } = await server({ versionIntervalMs: 1_000, maxAutoVersions: 2 });
    const provider = connect({ url: address.wsUrl, name: "auto" });
    await synced(provider);
    const text = provider.document.getText("t");
    const autos = async () =>
      (
        (await a.call("GET", "/documents/auto/versions")).body as {
          versions: Array<{ kind: string }>;
        }
      ).versions.filter((v) => v.kind === "auto").length;
    for (let round = 1; round <= 3; round++) {
      text.insert(text.length, `round ${round}. `);
      await acknowledged(provider);
      await vi.waitFor(async () => expect(await autos()).toBe(Math.min(round, 2)), {
        timeout: 5_000,
        interval: 50,
      });
    }
  });
});

describe("comparing versions", () => {
  const para = (text: string) => ({ type: "paragraph", content: [{ type: "text", text }] });
  const doc = (...content: unknown[]) => ({ type: "doc", content });
  const marked = (text: string, mark: string) => ({ type: "text", marks: [{ type: mark }], text });

  it("[API13] a version compares with the current document and with another version, as JSON and HTML, and reading changes nothing", async () => {
    const { api: a, address } = await server();
    await a.call("PUT", "/documents/cmp", json(doc(para("Hello brave world"), para("Second"))));
    const v1 = (await a.call("POST", "/documents/cmp/versions", json({ name: "v1" }))).body as {
      id: string;
    };
    // A connected editor: the comparison reads the live document, and must not change it.
    const provider = connect({ url: address.wsUrl, name: "cmp" });
    await synced(provider);
    const later = doc(para("Hello world again"), para("Second <script>alert(1)</script> & more"));
    await a.call("PUT", "/documents/cmp", json(later));
    await vi.waitFor(
      () => expect(provider.document.getXmlFragment("default").toString()).toContain("again"),
      SOON,
    );
    const stateBefore = await (await fetch(`${a.url}/api/v1/documents/cmp?format=yjs`)).bytes();
    const versionsBefore = (await a.call("GET", "/documents/cmp/versions")).body;
    const updates: Uint8Array[] = [];
    provider.document.on("update", (update: Uint8Array) => updates.push(update));

    const compared = await a.call("GET", `/documents/cmp/versions/${v1.id}/compare?to=current`);
    expect(compared.status).toBe(200);
    expect(compared.body).toMatchObject({
      from: { id: v1.id, name: "v1", kind: "named" },
      to: { id: "current", name: null, kind: "current", author: null },
      changes: { insertions: 2, deletions: 1 },
    });
    const { doc: both } = compared.body as { doc: { content: unknown[] } };
    expect(both.content[0]).toEqual({
      type: "paragraph",
      content: [
        { type: "text", text: "Hello " },
        marked("brave ", "deletion"),
        { type: "text", text: "world" },
        marked(" again", "insertion"),
      ],
    });
    // `to` defaults to the current document.
    expect((await a.call("GET", `/documents/cmp/versions/${v1.id}/compare`)).body).toMatchObject({
      changes: { insertions: 2, deletions: 1 },
    });

    const html = await a.call("GET", `/documents/cmp/versions/${v1.id}/compare?format=html`);
    expect(html.status).toBe(200);
    expect(html.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(html.text).toContain(
      '<p>Hello <del class="collab-deletion">brave </del>world<ins class="collab-insertion"> again</ins></p>',
    );
    expect(html.text).toContain("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more");
    expect(html.text).not.toContain("<script");

    // Two versions: the same changes; a version with itself, or with equal content: none.
    const v2 = (await a.call("POST", "/documents/cmp/versions", json({ name: "v2" }))).body as {
      id: string;
    };
    expect(
      (await a.call("GET", `/documents/cmp/versions/${v1.id}/compare?to=${v2.id}`)).body,
    ).toMatchObject({
      from: { id: v1.id, name: "v1" },
      to: { id: v2.id, name: "v2", kind: "named" },
      changes: { insertions: 2, deletions: 1 },
    });
    // The other way round, the insertions are deletions.
    expect(
      (await a.call("GET", `/documents/cmp/versions/${v2.id}/compare?to=${v1.id}`)).body,
    ).toMatchObject({ changes: { insertions: 1, deletions: 2 } });
    expect(
      (await a.call("GET", `/documents/cmp/versions/${v2.id}/compare?to=current`)).body,
    ).toMatchObject({ changes: { insertions: 0, deletions: 0 }, doc: later });

    // Reading changed nothing: the same state, no update to the editor, no version added.
    expect(await (await fetch(`${a.url}/api/v1/documents/cmp?format=yjs`)).bytes()).toEqual(
      stateBefore,
    );
    expect(updates).toEqual([]);
    const versionsAfter = (await a.call("GET", "/documents/cmp/versions")).body as {
      versions: Array<{ id: string }>;
    };
    expect(versionsAfter.versions.filter((v) => v.id !== v2.id)).toEqual(
      (versionsBefore as { versions: unknown[] }).versions,
    );
    provider.destroy();
  });

  it("[API13] unknown documents and versions are 404, a bad `to` or format 400, and access is as for reading versions", async () => {
    const { api: a } = await server();
    await a.call("PUT", "/documents/cmp", json(doc(para("text"))));
    const { id } = (await a.call("POST", "/documents/cmp/versions", json({ name: "v" }))).body as {
      id: string;
    };
    const status = async (path: string) => (await a.call("GET", path)).status;
    expect(await status("/documents/cmp/versions/no-such-version/compare")).toBe(404);
    expect(await status(`/documents/cmp/versions/${id}/compare?to=no-such-version`)).toBe(404);
    expect(await status(`/documents/missing/versions/${id}/compare`)).toBe(404);
    expect(await status(`/documents/cmp/versions/${id}/compare?to=`)).toBe(400);
    expect(await status(`/documents/cmp/versions/${id}/compare?to=%00`)).toBe(400);
    expect(await status(`/documents/cmp/versions/${id}/compare?format=markdown`)).toBe(400);
    const bad = await a.call("GET", `/documents/cmp/versions/${id}/compare?to=%00`);
    expect(bad.body).toMatchObject({ error: { code: "bad_request" } });

    const { address } = await startServer({ config: { authSecret: SECRET } });
    const token = (docs: string[], perm: "read" | "write") =>
      mintToken({ secret: SECRET, userId: "u", docs, perm, ttl: "1h" });
    const writer = checkedApi(address.url, { token: await token(["team/*"], "write") });
    await writer.call("PUT", "/documents/team%2Fa", json(doc(para("one"))));
    const saved = (await writer.call("POST", "/documents/team%2Fa/versions", json({ name: "v" })))
      .body as { id: string; author: string };
    expect(saved.author).toBe("u");
    const path = `/documents/team%2Fa/versions/${saved.id}/compare`;
    const reader = checkedApi(address.url, { token: await token(["team/*"], "read") });
    expect(await reader.call("GET", path)).toMatchObject({
      status: 200,
      body: { from: { author: "u" }, to: { id: "current" } },
    });
    const stranger = checkedApi(address.url, { token: await token(["other/*"], "read") });
    expect((await stranger.call("GET", path)).status).toBe(403);
    expect((await checkedApi(address.url).call("GET", path)).status).toBe(401);
  });
});

describe("credentials", () => {
  it("[API8] with API_SECRET the API needs it; user tokens reach only what they grant", async () => {
    const { address } = await startServer({
      config: { authSecret: SECRET, apiSecret: API_SECRET },
    });
    const admin = checkedApi(address.url, { token: API_SECRET });
    const anonymous = checkedApi(address.url);
    const reader = checkedApi(address.url, {
      token: await mintToken({
        secret: SECRET,
        userId: "r",
        docs: ["team/*"],
        perm: "read",
        ttl: "1h",
      }),
    });
    const writer = checkedApi(address.url, {
      token: await mintToken({
        secret: SECRET,
        userId: "w",
        docs: ["team/a"],
        perm: "write",
        ttl: "1h",
      }),
    });
    expect((await anonymous.call("GET", "/documents")).status).toBe(401);
    expect(
      (await checkedApi(address.url, { token: "wrong" }).call("GET", "/documents")).status,
    ).toBe(401);
    expect(
      (await admin.call("PUT", "/documents/team/a".replace("team/a", "team%2Fa"), json(RICH)))
        .status,
    ).toBe(201);
    expect((await admin.call("PUT", "/documents/secret", json(RICH))).status).toBe(201);

    expect((await reader.call("GET", "/documents/team%2Fa")).status).toBe(200);
    const denied = await reader.call("PUT", "/documents/team%2Fa", json(RICH));
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({
      error: { message: "the token allows only read on this document" },
    });
    expect((await reader.call("GET", "/documents/secret")).status).toBe(403);
    expect((await reader.call("DELETE", "/documents/team%2Fa")).status).toBe(403);
    const listed = (await reader.call("GET", "/documents")).body as {
      documents: Array<{ name: string }>;
    };
    expect(listed.documents.map((d) => d.name)).toEqual(["team/a"]);

    expect(
      (
        await writer.call("POST", "/documents/team%2Fa/content", {
          body: "more",
          type: "text/markdown",
        })
      ).status,
    ).toBe(200);
    const version = await writer.call(
      "POST",
      "/documents/team%2Fa/versions",
      json({ name: "by writer" }),
    );
    expect(version.body).toMatchObject({ author: "w" });
    const expired = checkedApi(address.url, {
      token: await mintToken({ secret: SECRET, userId: "x", docs: ["*"], perm: "write", ttl: 1 }),
    });
    await vi.waitFor(
      async () => {
        const result = await expired.call("GET", "/documents/team%2Fa");
        expect(result.status).toBe(401);
        expect(JSON.stringify(result.body)).toContain("token-expired");
      },
      { timeout: 5_000, interval: 200 },
    );
  });
});

describe("webhooks from the running server", () => {
  it("[HOOK9] document and version events reach a receiver, signed", async () => {
    const { url, received } = await signedReceiver("hook-secret-16chars");
    const { api: a } = await server({
      webhookUrls: [url],
      webhookSecret: "hook-secret-16chars",
      webhookDebounceMs: 50,
    });

    await a.call("PUT", "/documents/hooked", json(RICH));
    await a.call("POST", "/documents/hooked/versions", json({ name: "v" }));
    await a.call("DELETE", "/documents/hooked");
    await a.call("POST", "/trash/hooked/restore");
    await a.call("DELETE", "/documents/hooked");
    await a.call("DELETE", "/trash/hooked");
    await vi.waitFor(() => {
      expect(new Set(received.map((event) => event.type))).toEqual(
        new Set([
          "document.created",
          "document.updated",
          "version.created",
          "document.deleted",
          "document.restored",
          "document.purged",
        ]),
      );
    }, SOON);
    const deleted = received.find((event) => event.type === "document.deleted");
    expect(deleted?.data).toMatchObject({
      trash: { id: expect.any(String), purgeAt: expect.any(String) },
    });
    expect(received.every((event) => event.valid && event.data.document === "hooked")).toBe(true);
  });
});
