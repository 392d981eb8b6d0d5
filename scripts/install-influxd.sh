#!/usr/bin/env bash
# install-influxd.sh installs InfluxDB 1.8.10 (influxd) into the project-local
# .bin/ directory, which tests (internal/influxtest) and the local demo use.
#
#   scripts/install-influxd.sh        # from any working directory
#
# It does nothing when the binary is already there, so it is cheap to call
# before every test run. Building from source takes about 90 s the first time.
# Concurrent callers are serialised by a lock so only one of them builds.
#
# Environment:
#   VIGIL_BIN_DIR  install directory (default <repo root>/.bin)
set -euo pipefail

INFLUXD_VERSION=v1.8.10
INFLUXD_PKG=github.com/influxdata/influxdb/cmd/influxd

log() { printf 'install-influxd: %s\n' "$*" >&2; }

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
repo_root=$(cd -- "$script_dir/.." && pwd -P)
bin_dir=${VIGIL_BIN_DIR:-$repo_root/.bin}
target=$bin_dir/influxd

if [[ -x $target ]]; then
	exit 0
fi

command -v go >/dev/null 2>&1 || { log "go is not on PATH; cannot build influxd"; exit 1; }
mkdir -p -- "$bin_dir"
bin_dir=$(cd -- "$bin_dir" && pwd -P)
target=$bin_dir/influxd

# Serialise concurrent callers: the one holding the lock builds, the others
# wait and then find the binary in place.
exec 9>"$bin_dir/.influxd.lock"
if ! flock -n 9; then
	log "another install is running; waiting for it"
	flock 9
fi
if [[ -x $target ]]; then
	log "influxd $INFLUXD_VERSION is now present at $target"
	exit 0
fi

# Build into a private directory and move the result in place atomically, so
# an interrupted build never leaves a half-written binary behind.
tmp_bin=$(mktemp -d "$bin_dir/.influxd-build.XXXXXX")
trap 'rm -rf -- "$tmp_bin"' EXIT
log "building $INFLUXD_PKG@$INFLUXD_VERSION into $bin_dir (about 90 s the first time)"
start=$SECONDS
# Run outside the repository so its go.mod plays no part in the build.
(cd "$tmp_bin" && GOBIN=$tmp_bin go install "$INFLUXD_PKG@$INFLUXD_VERSION")
mv -f -- "$tmp_bin/influxd" "$target"
log "installed $target in $((SECONDS - start)) s"
