# Container image for the collab-docs sync server (Hocuspocus + LevelDB).
#
#   docker build -t collab-docs/server:0.1.0 .
#   docker run -p 127.0.0.1:1234:1234 -v collab-data:/data collab-docs/server:0.1.0
#
# or simply `docker compose up -d` (see docker-compose.yml).
#
# There is no build step: Node 24 runs the TypeScript sources in server/src directly
# (type stripping), so the image only needs the production dependencies and the sources.
# Requires BuildKit (the default builder since Docker Engine 23) for the cache mount and
# for the optional-workspace COPY below.

# ---------------------------------------------------------------------------------------
# Stage 1: install production dependencies.
# Only the manifests are copied first so this layer is cached until a dependency changes.
# ---------------------------------------------------------------------------------------
FROM node:24-slim AS deps

WORKDIR /app
ENV NODE_ENV=production

# package.json carries the `allowScripts` approval for classic-level's install script
# (it selects a prebuilt LevelDB binding, so no compiler toolchain is needed in -slim);
# .npmrc carries the npm settings; the lockfile pins every version.
COPY package.json package-lock.json .npmrc ./
# Every workspace's manifest must be present for npm to resolve the workspaces.
COPY server/package.json ./server/
# The editor workspace may not exist yet: a wildcard that matches nothing is allowed by
# BuildKit, so this line keeps working before and after editor/package.json is added.
COPY editor/package*.json ./editor/

# --omit=dev skips the toolchain (typescript, vitest, biome, the `node` npm package, ...):
# the image's own node is already 24. The cache mount keeps npm's download cache out of
# the layer while still speeding up rebuilds.
# `npm install`, not `npm ci`: the lockfile was made against a registry mirror that has
# only the linux-x64 builds of Biome's optional platform packages, and `npm ci` refuses a
# lockfile that lacks the others. The versions installed are still the locked ones.
RUN --mount=type=cache,target=/root/.npm \
    npm install --omit=dev --no-audit --no-fund

# ---------------------------------------------------------------------------------------
# Stage 2: build the editor app and embed bundle (Vite is a dev dependency, so this stage
# installs everything; only editor/dist leaves it).
# ---------------------------------------------------------------------------------------
FROM node:24-slim AS editor

WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY server/package.json ./server/
COPY editor/ ./editor/
COPY scripts/build-editor.ts ./scripts/
COPY tsconfig.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm install --no-audit --no-fund && node scripts/build-editor.ts

# ---------------------------------------------------------------------------------------
# Stage 3: runtime.
# ---------------------------------------------------------------------------------------
FROM node:24-slim AS runtime

LABEL org.opencontainers.image.title="collab-docs server" \
      org.opencontainers.image.description="Self-hostable collaborative document editing: a Hocuspocus sync server with a durable LevelDB store." \
      org.opencontainers.image.licenses="MIT"

# In a container the server must listen on all interfaces (the default 127.0.0.1 would
# be unreachable through a published port). /data is the volume declared below. On
# 0.0.0.0 the server refuses to start without AUTH_SECRET/AUTH_PUBLIC_KEY unless
# ALLOW_ANONYMOUS=true: pass one of them with `docker run -e`.
# glibc malloc settings that keep resident memory from creeping up (server/src/observability/allocator.ts).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    MALLOC_TRIM_THRESHOLD_=131072 \
    HOST=0.0.0.0 \
    PORT=1234 \
    DATA_DIR=/data \
    LOG_LEVEL=info

WORKDIR /app

# Installed dependencies (root node_modules, nested workspace node_modules, the workspace
# symlinks) together with the manifests they were installed from.
COPY --from=deps /app ./
# Server sources. .dockerignore excludes **/node_modules, so this cannot clobber the
# dependencies installed above with binaries built on the host.
COPY server/ ./server/
# The editor app and the standalone embed bundle the server serves at / and /embed/.
COPY --from=editor /app/editor/dist ./editor/dist
# The server imports editor sources by relative path: the document schema it converts with
# (the editor's own extension list), the comments model, the save protocol and the comparison
# schema; and those import their neighbours. Copy them all, not a list that goes stale.
COPY editor/src/ ./editor/src/

# The application files stay owned by root (read-only for the server process); only the
# data directory belongs to the unprivileged `node` user (uid 1000) of the base image.
# It is created before VOLUME so a fresh named volume inherits this ownership.
RUN mkdir -p /data && chown node:node /data

USER node

VOLUME ["/data"]

EXPOSE 1234

# The server flushes pending writes and closes LevelDB on SIGTERM. node runs as PID 1
# and installs its own SIGTERM handler, so the signal is not ignored. Give it time to
# finish: docker-compose.yml sets stop_grace_period; use `docker stop -t 30` otherwise.
STOPSIGNAL SIGTERM

# -slim has no curl/wget: probe /healthz with node's built-in fetch. The probe honours a
# PORT override; AbortSignal.timeout keeps a hung request from outliving --timeout.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||1234)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# node directly (not `npm start`): npm would sit in front as PID 1 and signals would
# reach the server only indirectly.
CMD ["node", "server/src/main.ts"]
