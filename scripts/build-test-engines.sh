#!/usr/bin/env bash
# Builds the real engines the integration tests run: docker-buildx (two versions) and BuildKit's
# buildkitd + buildctl (two versions), with `go install MODULE/cmd/TOOL@VERSION` from the Go module
# proxy. Test-only: the product itself stays TypeScript.
#
# Each tool lands in $BXB_ENGINES_DIR/<tool>-<version>/ (default ~/.cache/buildx-bootstrap/engines),
# outside the repository, and is reused when already there. The versions are written to
# $BXB_ENGINES_DIR/versions.env, which test/helpers/engines.ts reads.
#
# Usage: scripts/build-test-engines.sh            build what is missing
#        scripts/build-test-engines.sh --list     print the versions and where they go
set -uo pipefail

# The oldest buildx ≥ 0.12 and the oldest BuildKit 0.12.x that build with this machine's Go, and
# the newest releases. Bump the newest ones deliberately: their output formats are what the
# conformance test checks.
BUILDX_VERSIONS=(v0.12.1 v0.38.2)
BUILDKIT_VERSIONS=(v0.12.5 v0.34.2)
# A current Docker daemon (what every docker:29-dind job runs: the containerd image store by
# default): dockerd from moby's v2 module (beta.25's pseudo-version dependencies are refused by the
# module proxy), containerd v2 with its runc shim, and a runc new enough for the time namespace
# dockerd 29 asks for (Debian's 1.1.5 is not), built with cgo and seccomp like the release.
DOCKERD_VERSION=v2.0.0-beta.24
CONTAINERD_VERSION=v2.3.4
RUNC_VERSION=v1.5.3
# Registry copy tools the mirror benchmark compares against (peers, not product dependencies).
CRANE_VERSION=v0.22.1
REGCLIENT_VERSION=v0.11.7

# The commit each release tag points at, read from the upstream repository's tags, stamped as the
# revision (what `docker buildx version` / `buildkitd --version` print) when the module proxy's
# answer has no Origin.Hash: this machine's proxy gives it for buildx v0.12.1 only. A version with
# neither is stamped with its version string as the revision, said out loud. Add the commit here
# when bumping a version (`git rev-parse vX.Y.Z^{commit}` in the upstream repository); a cached
# build whose REVISION differs from the commit named here is rebuilt.
# No commit known here for buildx v0.38.2 or BuildKit v0.34.2: the upstream copies this was
# written against end before those tags, so they are stamped with their version.
declare -A KNOWN_REVISIONS=(
  [github.com/docker/buildx@v0.12.1]=30feaa1a915b869ebc2eea6328624b49facd4bfb
  [github.com/moby/buildkit@v0.12.5]=bac3f2b673f3f9d33e79046008e7a38e856b3dc6
)

dir=${BXB_ENGINES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/buildx-bootstrap/engines}

if [ "${1:-}" = "--list" ]; then
  for v in "${BUILDX_VERSIONS[@]}"; do echo "buildx $v $dir/buildx-$v/docker-buildx"; done
  for v in "${BUILDKIT_VERSIONS[@]}"; do echo "buildkit $v $dir/buildkit-$v/"; done
  echo "dockerd $DOCKERD_VERSION $dir/dockerd-$DOCKERD_VERSION/"
  echo "containerd $CONTAINERD_VERSION $dir/containerd-$CONTAINERD_VERSION/"
  echo "runc $RUNC_VERSION $dir/runc-$RUNC_VERSION/"
  echo "crane $CRANE_VERSION $dir/crane-$CRANE_VERSION/"
  echo "regclient $REGCLIENT_VERSION $dir/regclient-$REGCLIENT_VERSION/"
  exit 0
fi

command -v go >/dev/null || { echo "build-test-engines: go is not installed (needs Go ≥ 1.22)" >&2; exit 1; }
mkdir -p "$dir" || exit 1

# build MODULE VERSION OUTDIR TOOL... — go install each cmd/TOOL (or the module's root package for
# TOOL ".") with the version stamped the way the upstream Dockerfiles do it (-X
# MODULE/version.{Version,Revision,Package}, or VERSION_PKG's Version when set), into OUTDIR.
# CGO=1 and TAGS=... (set on the call) build with cgo and those build tags.
build() {
  local module=$1 version=$2 out=$3; shift 3
  local done_marker="$out/.complete"
  local known=${KNOWN_REVISIONS[$module@$version]:-}
  if [ -f "$done_marker" ]; then
    local stamped
    stamped=$(cat "$out/REVISION" 2>/dev/null)
    if [ -z "$known" ] || [ "$stamped" = "$known" ]; then echo "build-test-engines: $module $version cached in $out"; return 0; fi
    echo "build-test-engines: $module $version cached in $out is stamped '$stamped', not its commit $known: rebuilding"
  fi
  local tmp="$out.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp" || return 1
  # The revision buildx and BuildKit print is the commit: the proxy's .info carries it as
  # Origin.Hash when the proxy recorded it, else KNOWN_REVISIONS names it, else the version stands in.
  local revision
  revision=$(go mod download -json "$module@$version" 2>/dev/null | sed -nE 's/^\s*"Hash": "([0-9a-f]{40})".*/\1/p' | head -n 1)
  if [ -n "$revision" ] && [ -n "$known" ] && [ "$revision" != "$known" ]; then
    echo "build-test-engines: $module $version: the module proxy says commit $revision, KNOWN_REVISIONS says $known: fix KNOWN_REVISIONS" >&2
    return 1
  fi
  revision=${revision:-$known}
  if [ -z "$revision" ]; then
    revision=$version
    echo "build-test-engines: $module $version: no commit known (no Origin.Hash from the module proxy, none in KNOWN_REVISIONS): stamping the version '$version' as the revision"
  fi
  local ldflags="-s -w -X $module/version.Version=$version -X $module/version.Revision=$revision -X $module/version.Package=$module"
  if [ -n "${VERSION_PKG:-}" ]; then ldflags="-s -w -X $VERSION_PKG.Version=${version#v} -X $VERSION_PKG.GitCommit=$revision -X $VERSION_PKG.Revision=$revision"; fi
  local cgo=${CGO:-0} tags=${TAGS:-}
  local pkgs=()
  for tool in "$@"; do
    if [ "$tool" = . ]; then pkgs+=("$module@$version"); else pkgs+=("$module/cmd/$tool@$version"); fi
  done
  echo "build-test-engines: building $module $version ($*) ..."
  local log="$tmp/build.log"
  local start=$SECONDS
  local ok=1
  if ! CGO_ENABLED=$cgo GOBIN="$tmp" GOFLAGS=-buildvcs=false go install -trimpath -tags "$tags" -ldflags "$ldflags" "${pkgs[@]}" >"$log" 2>&1; then
    ok=0
    # `go install pkg@version` refuses a module whose go.mod has replace or exclude directives
    # (BuildKit ≥ 0.2x has excludes). Then build the same module source from the module cache as
    # the main module, which is what those directives are written for.
    if grep -q 'must not contain directives' "$log"; then
      local src
      src=$(go mod download -json "$module@$version" | sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p')
      if [ -n "$src" ]; then
        local cmds=()
        for tool in "$@"; do if [ "$tool" = . ]; then cmds+=(.); else cmds+=("./cmd/$tool"); fi; done
        (cd "$src" && CGO_ENABLED=$cgo GOFLAGS="-buildvcs=false -mod=readonly" go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$tmp/" "${cmds[@]}") >"$log" 2>&1 && ok=1
      fi
    fi
  fi
  if [ "$ok" = 0 ]; then
    local first
    first=$(grep -m1 -E '\.go:[0-9]+:[0-9]+: |^go: |cannot|error' "$log" || tail -n 1 "$log")
    echo "build-test-engines: $module $version failed to build: $first" >&2
    echo "build-test-engines: full log in $log" >&2
    return 1
  fi
  rm -f "$log"
  echo "$revision" >"$tmp/REVISION"
  touch "$tmp/.complete"
  rm -rf "$out" && mv "$tmp" "$out" || return 1
  echo "build-test-engines: $module $version built in $((SECONDS - start)) s"
}

status=0
for v in "${BUILDX_VERSIONS[@]}"; do
  if build github.com/docker/buildx "$v" "$dir/buildx-$v" buildx; then
    # The CLI looks for plugins named docker-<name>.
    [ -e "$dir/buildx-$v/docker-buildx" ] || mv "$dir/buildx-$v/buildx" "$dir/buildx-$v/docker-buildx"
  else
    status=1
  fi
done
for v in "${BUILDKIT_VERSIONS[@]}"; do
  build github.com/moby/buildkit "$v" "$dir/buildkit-$v" buildkitd buildctl || status=1
done
VERSION_PKG=github.com/moby/moby/v2/dockerversion build github.com/moby/moby/v2 "$DOCKERD_VERSION" "$dir/dockerd-$DOCKERD_VERSION" dockerd || status=1
VERSION_PKG=github.com/containerd/containerd/v2/version build github.com/containerd/containerd/v2 "$CONTAINERD_VERSION" "$dir/containerd-$CONTAINERD_VERSION" containerd containerd-shim-runc-v2 || status=1
if [ -e /usr/include/seccomp.h ]; then
  CGO=1 TAGS=seccomp VERSION_PKG=main build github.com/opencontainers/runc "$RUNC_VERSION" "$dir/runc-$RUNC_VERSION" . || status=1
else
  echo "build-test-engines: runc needs libseccomp-dev (Debian) for its seccomp build" >&2; status=1
fi
VERSION_PKG=github.com/google/go-containerregistry/cmd/crane/cmd build github.com/google/go-containerregistry "$CRANE_VERSION" "$dir/crane-$CRANE_VERSION" crane || status=1
build github.com/regclient/regclient "$REGCLIENT_VERSION" "$dir/regclient-$REGCLIENT_VERSION" regctl regsync || status=1

{
  echo "BXB_ENGINES_DIR=$dir"
  echo "BXB_BUILDX_VERSIONS=\"${BUILDX_VERSIONS[*]}\""
  echo "BXB_BUILDKIT_VERSIONS=\"${BUILDKIT_VERSIONS[*]}\""
  echo "BXB_DOCKERD_VERSION=$DOCKERD_VERSION"
  echo "BXB_CONTAINERD_VERSION=$CONTAINERD_VERSION"
  echo "BXB_RUNC_VERSION=$RUNC_VERSION"
  echo "BXB_CRANE_VERSION=$CRANE_VERSION"
  echo "BXB_REGCLIENT_VERSION=$REGCLIENT_VERSION"
} >"$dir/versions.env"
exit $status
