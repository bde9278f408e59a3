# syntax=docker/dockerfile:1
# hoopgate image: the TypeScript sources run through tsx (a runtime dependency), so there is no
# compile step; the build stage only installs and prunes node_modules (incl. native better-sqlite3).
# Not built in the development sandbox (no Docker engine there): see docs/deploy.md.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
# better-sqlite3 compiles from source when no prebuilt binary matches the platform.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# Lifecycle scripts run only for the packages that need them (package.json "allowScripts").
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3 esbuild
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
RUN npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
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
COPY --from=build /app/package.json /app/tsconfig.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/src ./src
USER 10001:10001
EXPOSE 8443
ENTRYPOINT ["node", "bin/hoopgate.js"]
CMD ["serve", "--config", "/etc/hoopgate/hoopgate.yaml"]
