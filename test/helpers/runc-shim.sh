#!/bin/sh
# Test-only OCI runtime for the harness's own dockerd (registered with --add-runtime and made the
# default with --default-runtime; see test/helpers/engines.ts).
#
# Why: the capability bounding set of these machines lacks CAP_SYS_RESOURCE, and runc refuses to
# start any process that asks for a capability it cannot have ("unable to apply caps: operation not
# permitted"). buildx always creates its BuildKit container privileged (every capability), and
# checks it with a privileged `docker exec … buildctl debug workers` (docker/buildx
# driver/docker-container/driver.go), so neither could start here. This shim deletes that one
# capability from the container spec (`create`/`run`: <bundle>/config.json) and from the process
# spec of `exec --process FILE`, then hands over to the real runc with the arguments unchanged.
# The specs are compact JSON (json.Marshal in containerd and moby), so a sed edit is exact.
set -u
cap='"CAP_SYS_RESOURCE"'
strip() {
  [ -f "$1" ] || return 0
  sed -i -e "s/$cap,//g" -e "s/,$cap//g" -e "s/$cap//g" "$1"
}

cmd="" bundle="" process="" prev=""
for arg in "$@"; do
  case "$prev" in
    --bundle|-b) bundle=$arg ;;
    --process|-p) process=$arg ;;
  esac
  case "$arg" in
    --bundle=*) bundle=${arg#--bundle=} ;;
    --process=*) process=${arg#--process=} ;;
    create|run|exec) [ -z "$cmd" ] && cmd=$arg ;;
  esac
  prev=$arg
done

case "$cmd" in
  create|run)
    strip "${bundle:-.}/config.json"
    # engines.ts slowStart(): a deliberately slow container start, for interrupt tests.
    if [ -n "${BXB_SHIM_SLOW_FILE:-}" ] && [ -f "$BXB_SHIM_SLOW_FILE" ]; then sleep "$(cat "$BXB_SHIM_SLOW_FILE")"; fi
    ;;
  exec) [ -n "$process" ] && strip "$process" ;;
esac
# engines.ts points BXB_SHIM_RUNC at the runc built for dockerd 29 (Debian's 1.1.5 cannot make the
# time namespace it asks for); unset, the runc on PATH.
exec "${BXB_SHIM_RUNC:-runc}" "$@"
