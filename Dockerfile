# syntax=docker/dockerfile:1
# cancel-gateway container image.
#   docker build -t cancel-gateway:0.1.0 .
#   docker run --read-only -v "$PWD/config.yaml:/etc/cancel-gateway/config.yaml:ro" \
#     -v "$PWD/tls:/etc/cancel-gateway/tls:ro" ... -p 8443:8443 cancel-gateway:0.1.0
# The build stage runs only what CI runs (npm ci, which compiles with `prepare` = tsc), then drops
# the devDependencies (node-forge, which only the demo uses, among them) and the compiled demo. It
# has the toolchain native modules need when no prebuilt binary fits (node-gyp: python3, make,
# g++); they are compiled there, against the same Node as the runtime stage, and copied over. The
# runtime stage holds package.json, the production node_modules, dist/ without the demo, and
# config/ (JSON Schemas and profiles, found through src/paths.ts), all owned by root and read-only
# for the non-root user the gateway runs as.
# Node.js 26 is the Active LTS line (since 2026-10-28); the package also supports Node.js 20.

ARG NODE_IMAGE=node:26-trixie-slim

FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY config ./config
COPY src ./src
COPY demo ./demo
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf dist/demo

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# uid/gid 10001: the chart's runAsUser/runAsGroup/fsGroup.
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin gateway
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/config ./config
USER 10001:10001
# mTLS listener and admin listener (/healthz, /readyz, /metrics): config listen.port, admin.port.
EXPOSE 8443 9090
# Nothing is written at run time: the root filesystem may be read-only (an emptyDir at /tmp is
# optional). The slim image has no curl, so the health check is node itself; set
# GATEWAY_ADMIN_PORT when the configuration moves the admin port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "require('node:http').get({host:'127.0.0.1',port:Number(process.env.GATEWAY_ADMIN_PORT)||9090,path:'/healthz',timeout:3000},(r)=>{r.resume();process.exit(r.statusCode===200?0:1)}).on('error',()=>process.exit(1)).on('timeout',function(){this.destroy();process.exit(1)})"]
STOPSIGNAL SIGTERM
# A 4 MiB young generation (the same CPU per request as Node's default 16 MiB), and an old
# generation that grows by half its live size between full collections instead of V8's up to 4x,
# keep peak RSS under 150 MiB at 64 concurrent cancels (docs/performance.md, run 12);
# `npm start` and the bench use the same flags.
ENTRYPOINT ["node", "--max-semi-space-size=4", "--heap-growing-percent=50", "dist/src/main.js"]
CMD ["--config", "/etc/cancel-gateway/config.yaml"]
