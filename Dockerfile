# buildx-bootstrap for CI jobs: `docker:<v>-cli` plus Node and the tool, so a job needs neither
# `apk add nodejs npm` nor the npm registry. Use it as a GitLab job `image:` beside a
# `docker:<v>-dind` service (README, "The CI image").
#
# Build context: a directory holding this file and exactly one `npm pack` tarball of
# buildx-bootstrap (`buildx-bootstrap image` makes both; from a checkout: `npm ci && npm pack`,
# then `docker buildx build --network none --build-arg VERSION=<the packed version> .`).
#
# Why `FROM docker:<v>-cli` plus Node, and not `FROM node:<v>-alpine` plus the docker CLI:
#   - a job gets the image GitLab's Docker-in-Docker documentation uses, as it is: its entrypoint
#     (DOCKER_HOST/DOCKER_CERT_PATH derived from DOCKER_TLS_CERTDIR, job scripts run unchanged),
#     `DOCKER_TLS_CERTDIR=/certs`, CA certificates, git and ssh for remote build contexts, and its
#     docker CLI and buildx plugin. Starting from node:alpine would mean re-creating all of that,
#     and overwriting node's own docker-entrypoint.sh, which runs `node` for arguments that look
#     like flags;
#   - Node is one executable linked against musl, libstdc++ and libgcc_s; the last two are copied
#     with it, so "adding Node" is three files. What must match is the C library: Node comes from
#     node:<v>-alpine<ALPINE_VERSION>, the Alpine release docker:<DOCKER_VERSION>-cli is built on
#     (musl runs binaries built against the same or an older musl, not a newer one). Keep
#     ALPINE_VERSION equal to that release when changing DOCKER_VERSION.
#
# Every RUN runs on $BUILDPLATFORM and the final stage only copies, so the image builds for
# linux/amd64 and linux/arm64 on either machine without an emulator. Nothing is fetched during the
# build but the base images: the tool's dependencies are bundled into its dist/ by esbuild when the
# package is built (scripts/build.mjs), so the tarball is the whole program and no `npm install`
# (and no npm registry) is needed.

# Newest stable Docker major, and the Alpine release its `-cli` image is built on.
ARG DOCKER_VERSION=29
ARG ALPINE_VERSION=3.23
# Node LTS; the package needs >= 20.5.
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-alpine${ALPINE_VERSION} AS node

FROM --platform=$BUILDPLATFORM node:${NODE_VERSION}-alpine${ALPINE_VERSION} AS package
ARG VERSION
WORKDIR /context
COPY buildx-bootstrap-*.tgz ./
# Unpacked where `npm install --global` would put it, with the two bin links npm would make; the
# packed version must be the one the labels claim.
RUN set -eu; \
    set -- buildx-bootstrap-*.tgz; \
    if [ "$#" -ne 1 ]; then echo "the build context must hold exactly one buildx-bootstrap-*.tgz (npm pack), found: $*" >&2; exit 1; fi; \
    mkdir -p /unpacked /out/usr/local/lib/node_modules /out/usr/local/bin; \
    tar -xzf "$1" -C /unpacked; \
    mv /unpacked/package /out/usr/local/lib/node_modules/buildx-bootstrap; \
    cd /out/usr/local/lib/node_modules/buildx-bootstrap; \
    packed="$(node -p 'require("./package.json").version')"; \
    if [ "$packed" != "${VERSION:-}" ]; then echo "--build-arg VERSION=${VERSION:-} does not match the packed version $packed" >&2; exit 1; fi; \
    ln -s ../lib/node_modules/buildx-bootstrap/bin/buildx-bootstrap.js /out/usr/local/bin/buildx-bootstrap; \
    ln -s ../lib/node_modules/buildx-bootstrap/bin/buildx-bootstrap.js /out/usr/local/bin/bxb; \
    BXB_COMPILE_CACHE=0 node bin/buildx-bootstrap.js --help > /dev/null

FROM docker:${DOCKER_VERSION}-cli
ARG VERSION
ARG SOURCE=https://www.npmjs.com/package/buildx-bootstrap
ARG REVISION=
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/lib/libstdc++.so.6 /usr/lib/libgcc_s.so.1 /usr/lib/
COPY --from=package /out/ /
LABEL org.opencontainers.image.title="buildx-bootstrap" \
      org.opencontainers.image.description="docker:cli with buildx-bootstrap: a pinned, mirror-configured BuildKit builder for docker buildx" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT"
# ENTRYPOINT ["docker-entrypoint.sh"] and CMD ["sh"] stay docker:<v>-cli's.
