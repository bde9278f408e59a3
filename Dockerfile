# syntax=docker/dockerfile:1
# hoopgate image: the gateway package only (packages/gateway), compiled to JavaScript in the build
# stage; the runtime stage holds its dist/, bin/ and production node_modules — no TypeScript, no
# tsx, no simulated API server, no OpenID provider.
# Not built in the development sandbox (no Docker engine there); test/integration/deploy.test.ts
# replays this build stage's npm commands in a temporary folder. See docs/deploy.md.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 compiles from source when no prebuilt binary matches the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages/gateway ./packages/gateway
# The gateway workspace and the repository's build tools (typescript); lifecycle scripts only for
# the native module (package.json "allowScripts").
RUN npm ci --workspace hoopgate --include-workspace-root --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 \
 && npx tsc -b packages/gateway
# Production dependencies of the gateway alone, installed from the same lock file.
RUN npm ci --workspace hoopgate --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 \
 && node -e "new (require('better-sqlite3'))(':memory:').close()"

FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="hoopgate" \
      org.opencontainers.image.description="Least-privilege gateway between agents and the Kubernetes API" \
      org.opencontainers.image.licenses="Apache-2.0"
# The gateway needs neither npm, npx, corepack nor yarn at run time: less to patch, less to abuse.
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /opt/yarn-* /usr/local/bin/yarn /usr/local/bin/yarnpkg
ENV NODE_ENV=production \
    HOME=/tmp
WORKDIR /app
# Owned by root and read-only to the gateway's user: it cannot change its own code.
COPY --from=build /src/packages/gateway/package.json ./
COPY --from=build /src/packages/gateway/bin ./bin
COPY --from=build /src/packages/gateway/dist ./dist
COPY --from=build /src/node_modules ./node_modules
USER 10001:10001
EXPOSE 8443
ENTRYPOINT ["node", "bin/hoopgate.js"]
CMD ["serve", "--config", "/etc/hoopgate/hoopgate.yaml"]
