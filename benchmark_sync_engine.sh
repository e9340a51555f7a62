#!/usr/bin/env bash
# Quilt benchmark: starts a private quiltd, measures it through the real CLI
# and the gRPC API (quilt-bench), compares it with crun and runc on the same
# machine and rootfs, prints a markdown summary, and leaves nothing behind.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: ./benchmark_sync_engine.sh [--quick] [--json FILE] [--reap-gate N] [--scale LIST]
                                  [--cluster N] [--install-peers] [--start-queue N]
                                  [--quiltd-arg ARG]...

  --quick          small counts: the whole run takes under a minute
                   (default: full mode, under ten minutes)
  --json FILE      write every figure to FILE, and the chart to FILE's
                   basename with .svg
  --scale LIST     only measure scale: the density step (time to running of
                   one more container, GetContainer, ListContainers, memory,
                   removal) at each count of live containers, e.g. 100,1000,
                   and crun at the same counts (create + start of one more,
                   state, list, memory, delete) when it is installed
  --cluster N      only measure a cluster: N (2 or 3) nodes sharing a
                   PostgreSQL started here (Debian's postgresql package, in
                   the temporary directory, on 127.0.0.1 in the run's network
                   namespace): create acknowledgement through one node,
                   status through another, starts/s with 1..N nodes, and
                   the store write p99 of PostgreSQL beside SQLite's
  --reap-gate N    only run the reap gate: N short-lived containers, 16 in
                   flight; exits non-zero unless there are zero hangs, zero
                   zombies and zero leftovers; reports the growth of the
                   host's unreclaimable kernel memory once all are removed
  --install-peers  install crun and runc with apt-get when they are missing
                   (otherwise a missing one is skipped, with a hint)
  --start-queue N  quiltd's --start-queue for this run (default 256), so
                   that the throughput bursts overflow it and drain quickly
  --quiltd-arg ARG one more argument for quiltd (repeatable), e.g.
                   --quiltd-arg --userns-default=private
  -h, --help       this text

Runs as root on Linux. quiltd runs in a network namespace of its own (ip
netns, from iproute2), where the bridge figures are taken; the host's
network namespace is never changed. Everything the run creates (daemon, socket, data dir,
cgroups quilt-bench-<random>, OCI bundles and runtime state) lives under one
temporary directory and is removed on exit, Ctrl-C or failure.
EOF
}

die() { echo "benchmark: $*" >&2; exit 2; }
log() { echo "== $*" >&2; }

MODE=full
JSON_OUT=""
REAP_N=""
SCALE=""
CLUSTER=""
INSTALL_PEERS=0
START_QUEUE=256
QUILTD_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) MODE=quick ;;
    --json) [[ $# -ge 2 ]] || die "--json needs a file"; JSON_OUT=$2; shift ;;
    --reap-gate) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--reap-gate needs a number"; REAP_N=$2; shift ;;
    --scale) [[ ${2:-} =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--scale needs counts, e.g. 100,1000"; SCALE=$2; shift ;;
    --cluster) [[ ${2:-} =~ ^[23]$ ]] || die "--cluster needs 2 or 3 (nodes)"; CLUSTER=$2; shift ;;
    --install-peers) INSTALL_PEERS=1 ;;
    --start-queue) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--start-queue needs a number"; START_QUEUE=$2; shift ;;
    --quiltd-arg) [[ $# -ge 2 ]] || die "--quiltd-arg needs an argument"; QUILTD_ARGS+=("$2"); shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  shift
done
[[ $(id -u) -eq 0 ]] || die "must run as root (containers, cgroups, mounts)"
if [[ -n $JSON_OUT ]]; then
  JSON_OUT=$(realpath -m -- "$JSON_OUT")
  mkdir -p -- "$(dirname -- "$JSON_OUT")"
fi

ROOT=$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# Where cargo puts the release binaries: $CARGO_TARGET_DIR (relative to
# $ROOT, where cargo runs) or target/.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$ROOT/$TARGET_DIR
BIN=$TARGET_DIR/release
QUILTD=$BIN/quiltd
QUILT=$BIN/quilt
QB=$BIN/quilt-bench

# Counts per mode.
if [[ $MODE == quick ]]; then
  API_ARGS=(--containers 1000 --gets 2000 --lists 20 --starts 30 --list-stored 10000 --pages 100)
  TTR_N=50; SEQ_N=60; PEER_ITERS=15; PEER_STATES=30; PAUSE_N=50; BURST=1000; PROBES=20
  TP_SECONDS=2; TP_DRAIN=40; DENSITY_N=50; DENSITY_GETS=1000; NET_N=20
else
  API_ARGS=(--containers 1000 --gets 10000 --lists 100 --starts 200 --list-stored 10000 --pages 400)
  TTR_N=500; SEQ_N=500; PEER_ITERS=200; PEER_STATES=300; PAUSE_N=200; BURST=5000; PROBES=50
  TP_SECONDS=10; TP_DRAIN=120; DENSITY_N=500; DENSITY_GETS=5000; NET_N=200
fi

# ---------------------------------------------------------------- cleanup --
TMP=""
QUILTD_PID=""
STEP_PID=""
PARENT=""
PEERS=()         # "name=/path/to/binary"
PEER_NS_NEEDED=0
FAILED_STEPS=""
# The network namespace quiltd runs in (its bridges and rules are made
# there, never in the host's namespace), and the prefix that enters it.
NETNS=""
NS_EXEC=()
# --cluster: the PostgreSQL server and the nodes.
PG_PID=""
NODE_PIDS=()

# Prefix that runs a command in a private mount namespace without the cgroup
# v2 mount, where crun 1.8 accepts this host's mixed (v1 + unified) layout.
# The host's mounts are untouched. Used for every peer alike, and for
# quilt-bench while it times them. Empty when not needed. (unshare and sh
# exec, so the command keeps the pid that was started.)
PEER_NS=()

cgroup_dirs_of() { # every hierarchy's copy of cgroup $1
  local d
  for d in "/sys/fs/cgroup/$1" /sys/fs/cgroup/*/"$1"; do
    [[ -d $d ]] && echo "$d"
  done
  return 0
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [[ -n $TMP ]] || exit "$rc"
  log "cleaning up"
  if [[ -n $STEP_PID ]] && kill -0 "$STEP_PID" 2>/dev/null; then
    kill -TERM "$STEP_PID" 2>/dev/null
    wait "$STEP_PID" 2>/dev/null
  fi
  # 1. Containers, through the API, while the daemon is up.
  if [[ -n $QUILTD_PID ]] && kill -0 "$QUILTD_PID" 2>/dev/null && [[ -S $TMP/quilt.sock ]]; then
    timeout 90 "$QB" cleanup --socket "$TMP/quilt.sock" --timeout 60 \
      || echo "benchmark: removing containers through the API failed" >&2
  fi
  # 1b. A cluster's nodes: their containers through them, then the nodes,
  # then PostgreSQL.
  local i
  for i in "${!NODE_PIDS[@]}"; do
    if kill -0 "${NODE_PIDS[$i]}" 2>/dev/null && [[ -S $TMP/node$((i + 1)).sock ]]; then
      timeout 90 "$QB" cleanup --socket "$TMP/node$((i + 1)).sock" --timeout 60 >/dev/null \
        || echo "benchmark: removing node$((i + 1))'s containers failed" >&2
    fi
  done
  for i in "${!NODE_PIDS[@]}"; do
    kill -TERM "${NODE_PIDS[$i]}" 2>/dev/null
  done
  for i in "${!NODE_PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "${NODE_PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${NODE_PIDS[$i]}" 2>/dev/null
    wait "${NODE_PIDS[$i]}" 2>/dev/null
    if [[ -n $PARENT && -x $QB ]]; then
      "$QB" leftovers --data-dir "$TMP/node$((i + 1))" --cgroup-parent "$PARENT-n$((i + 1))" --kill >/dev/null
      local d
      while read -r d; do
        [[ -n $d ]] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
        [[ -d $d ]] && echo "benchmark: cannot remove cgroup $d" >&2
      done < <(cgroup_dirs_of "$PARENT-n$((i + 1))")
    fi
  done
  if [[ -n $PG_PID ]]; then
    kill -INT "$PG_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$PG_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PG_PID" 2>/dev/null
    wait "$PG_PID" 2>/dev/null
  fi
  # 2. The daemon (SIGTERM, then SIGKILL after 10 s).
  if [[ -n $QUILTD_PID ]] && kill -0 "$QUILTD_PID" 2>/dev/null; then
    kill -TERM "$QUILTD_PID"
    for _ in $(seq 100); do kill -0 "$QUILTD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$QUILTD_PID" 2>/dev/null
  fi
  [[ -n $QUILTD_PID ]] && wait "$QUILTD_PID" 2>/dev/null
  # The daemon's network namespace, with whatever it made there.
  [[ -n $NETNS ]] && ip netns del "$NETNS" 2>/dev/null
  # 3. Peer containers and their state.
  local p name bin id
  for p in "${PEERS[@]}"; do
    name=${p%%=*}; bin=${p#*=}
    [[ -d $TMP/peer-state/$name ]] || continue
    for id in $("${PEER_NS[@]}" "$bin" --root "$TMP/peer-state/$name" list -q 2>/dev/null); do
      "${PEER_NS[@]}" "$bin" --root "$TMP/peer-state/$name" delete -f "$id" >/dev/null 2>&1 \
        || echo "benchmark: $name delete -f $id failed" >&2
    done
  done
  # 4. Leftover processes (shims, anything in our cgroups), then the cgroups.
  if [[ -n $PARENT && -x $QB ]]; then
    "$QB" leftovers --data-dir "$TMP/data" --cgroup-parent "$PARENT" --kill >/dev/null
    "$QB" leftovers --data-dir "$TMP/peer-state" --cgroup-parent "$PARENT-peers" --kill >/dev/null
  fi
  if [[ -n $PARENT ]]; then
    local d
    while read -r d; do
      [[ -n $d ]] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
      [[ -d $d ]] && echo "benchmark: cannot remove cgroup $d" >&2
    done < <(cgroup_dirs_of "$PARENT"; cgroup_dirs_of "$PARENT-peers")
  fi
  # crun, in the peers' namespace without the cgroup2 mount, also makes
  # its cgroup directories on the /sys/fs/cgroup tmpfs below where the
  # unified hierarchy is mounted (hidden under that mount on the host):
  # removed from inside that namespace.
  if [[ -n $PARENT && $PEER_NS_NEEDED -eq 1 ]]; then
    "${PEER_NS[@]}" sh -c 'd=/sys/fs/cgroup/unified/$1; [ ! -d "$d" ] || ! mountpoint -q /sys/fs/cgroup || rm -rf --one-file-system -- "$d"' \
      peer-clean "$PARENT-peers" \
      || echo "benchmark: cannot remove the peers' directories under /sys/fs/cgroup/unified/$PARENT-peers" >&2
  fi
  # 5. Mounts under the temp dir (deepest first), then the files.
  local m
  while read -r m; do
    [[ -n $m ]] && umount -l "$m" 2>/dev/null
  done < <(awk -v t="$TMP" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  if awk -v t="$TMP" '$5 == t || index($5, t "/") == 1 { f = 1 } END { exit !f }' /proc/self/mountinfo; then
    echo "benchmark: mounts remain under $TMP; not deleting it" >&2
    [[ $rc -eq 0 ]] && rc=1
  else
    rm -rf --one-file-system -- "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs one step in the background and waits for it, so Ctrl-C and TERM are
# handled at once (bash runs traps only between foreground commands).
step() {
  "$@" &
  STEP_PID=$!
  local rc=0
  wait "$STEP_PID" || rc=$?
  STEP_PID=""
  return "$rc"
}

# A measurement that fails is reported and the run goes on; the script then
# exits non-zero.
measure() {
  local name=$1; shift
  if ! step "$@"; then
    echo "benchmark: measurement '$name' failed" >&2
    FAILED_STEPS+="$name "
  fi
}

# ------------------------------------------------------------------ build --
log "building release binaries (cargo decides what is out of date)"
build_t0=$SECONDS
(cd "$ROOT" && scripts/build.sh --quiet -p quilt-server -p quilt-cli -p quilt-runtime -p quilt-bench) \
  || die "build failed"
log "build: $((SECONDS - build_t0)) s (not part of the timed run)"
for b in "$QUILTD" "$QUILT" "$QB" "$BIN/quilt-shim"; do
  [[ -x $b ]] || die "missing $b after the build"
done
RUN_T0=$SECONDS

# ------------------------------------------------------------------ peers --
find_peer() { # name debian-package
  local bin
  bin=$(command -v "$1" || true)
  if [[ -z $bin && $INSTALL_PEERS -eq 1 ]]; then
    log "installing $2 (--install-peers)"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2 \
      && bin=$(command -v "$1" || true)
  fi
  if [[ -z $bin ]]; then
    echo "benchmark: $1 not found: skipping the $1 comparison (install it with 'apt-get install $2', or pass --install-peers)" >&2
    SKIPPED+="$1 (not installed) "
    return 0
  fi
  if ! "$bin" --version >/dev/null 2>&1; then
    echo "benchmark: $bin does not run: skipping the $1 comparison (reinstall it with 'apt-get install --reinstall $2')" >&2
    SKIPPED+="$1 (not working) "
    return 0
  fi
  PEERS+=("$1=$bin")
}
SKIPPED=""
if [[ -z $REAP_N && -z $CLUSTER ]]; then
  find_peer crun crun
  # At the scale counts, crun only (runc's figures come from the full run).
  [[ -n $SCALE ]] || find_peer runc runc
  if ! command -v python3 >/dev/null && ! command -v jq >/dev/null; then
    if [[ $INSTALL_PEERS -eq 1 ]]; then
      apt-get install -y -qq jq >&2
    else
      echo "benchmark: neither python3 nor jq found to edit the OCI config: skipping peers (apt-get install jq, or --install-peers)" >&2
      SKIPPED+="all (no python3/jq) "
      PEERS=()
    fi
  fi
  if mountpoint -q /sys/fs/cgroup/unified; then
    PEER_NS_NEEDED=1
    PEER_NS=(unshare --mount --propagation private -- sh -c 'umount /sys/fs/cgroup/unified && exec "$@"' peer-ns)
  fi
fi

# ----------------------------------------------------------------- daemon --
TMP=$(mktemp -d /tmp/quilt-bench.XXXXXXXX)
RAND=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
PARENT=quilt-bench-$RAND
SOCK=$TMP/quilt.sock
DATA=$TMP/data
OUT=$TMP/results
mkdir -p "$OUT" "$DATA"

if [[ -z $REAP_N ]] && command -v ip >/dev/null && ip netns add "quilt-bench-$RAND" 2>/dev/null; then
  NETNS=quilt-bench-$RAND
  ip -n "$NETNS" link set lo up
  NS_EXEC=(nsenter "--net=/run/netns/$NETNS")
elif [[ -z $REAP_N ]]; then
  echo "benchmark: cannot make a network namespace (ip netns, from iproute2): quiltd runs in this one and the network step is skipped" >&2
fi

log "starting quiltd (data $DATA, cgroup parent $PARENT, start queue $START_QUEUE${NETNS:+, network namespace $NETNS})"
# In its own session, so that a Ctrl-C meant for this script does not shut
# the daemon down before cleanup() has removed the containers through it.
NO_COLOR=1 setsid "${NS_EXEC[@]}" "$QUILTD" --data-dir "$DATA" --socket "$SOCK" --cgroup-parent "$PARENT" \
  --start-queue "$START_QUEUE" "${QUILTD_ARGS[@]}" >"$TMP/quiltd.log" 2>&1 </dev/null &
QUILTD_PID=$!
"$QB" wait-ready --socket "$SOCK" --timeout 30 --pid "$QUILTD_PID" \
  || { tail -n 20 "$TMP/quiltd.log" >&2; die "quiltd did not become ready"; }

HOST_DESC="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
MODE_NAME=$MODE
[[ -n $REAP_N ]] && MODE_NAME="reap-gate $REAP_N"
[[ -n $SCALE ]] && MODE_NAME="scale $SCALE"
[[ -n $CLUSTER ]] && MODE_NAME="cluster of $CLUSTER"
write_meta() {
  local date args
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  args="--cgroup-parent $PARENT --start-queue $START_QUEUE${QUILTD_ARGS[*]:+ ${QUILTD_ARGS[*]}}"
  if command -v python3 >/dev/null; then
    python3 -c 'import json, sys; k = sys.argv[1::2]; v = sys.argv[2::2]; d = dict(zip(k, v)); d["peers_private_mount_ns_without_cgroup2"] = d["peers_private_mount_ns_without_cgroup2"] == "1"; print(json.dumps(d, indent=2))' \
      mode "$MODE_NAME" date "$date" host "$HOST_DESC" git_rev "$GIT_REV" quiltd_args "$args" \
      peers_skipped "${SKIPPED% }" peers_private_mount_ns_without_cgroup2 "$PEER_NS_NEEDED"
  else
    jq -n --arg mode "$MODE_NAME" --arg date "$date" --arg host "$HOST_DESC" --arg git_rev "$GIT_REV" \
      --arg quiltd_args "$args" --arg peers_skipped "${SKIPPED% }" --argjson ns "$PEER_NS_NEEDED" \
      '{$mode, $date, $host, $git_rev, $quiltd_args, $peers_skipped, peers_private_mount_ns_without_cgroup2: ($ns == 1)}'
  fi
}
write_meta >"$OUT/meta.json" || echo '{}' >"$OUT/meta.json"

finish() { # merge, chart, print
  local json=$TMP/final.json
  "$QB" summary --in "$OUT" --json "$json" --markdown "$TMP/summary.md" >/dev/null
  if [[ -n $JSON_OUT ]]; then
    cp "$json" "$JSON_OUT"
    if [[ -f $OUT/peers.json ]]; then
      "$QB" chart --json "$JSON_OUT" --out "${JSON_OUT%.json}.svg" \
        && log "wrote $JSON_OUT and ${JSON_OUT%.json}.svg"
    else
      log "wrote $JSON_OUT (no chart: the peers were not measured)"
    fi
  fi
  echo
  cat "$TMP/summary.md"
  local errs
  errs=$(grep -c -E '\b(ERROR|WARN)\b' "$TMP/quiltd.log" || true)
  echo
  echo "quiltd log: ${errs:-0} ERROR/WARN lines."
  if ! kill -0 "$QUILTD_PID" 2>/dev/null; then
    echo "benchmark: quiltd is no longer running; its last lines:" >&2
    tail -n 20 "$TMP/quiltd.log" >&2
    FAILED_STEPS+="quiltd-died "
  elif [[ $errs -gt 0 ]]; then
    grep -E '\b(ERROR|WARN)\b' "$TMP/quiltd.log" | sed 's/\x1b\[[0-9;]*m//g' | head -n 5 >&2
  fi
  log "measured in $((SECONDS - RUN_T0)) s"
}

# OCI bundles for the peers: the daemon's busybox rootfs, copied; one
# config.json generated by the first peer's `spec`, so both peers have the
# same defaults; per peer a /bin/true and a `sleep 3600` bundle.
prepare_bundles() {
  local rootfs=$DATA/images/default/rootfs p name kind b args first
  [[ -d $rootfs ]] || "$QUILT" --socket "$SOCK" run --rm default /bin/true >/dev/null || return 1
  [[ -d $rootfs ]] || { echo "benchmark: the default image rootfs is missing at $rootfs" >&2; return 1; }
  cp -a "$rootfs" "$TMP/peer-rootfs" || return 1
  mkdir -p "$TMP/spec" "$TMP/bundles" "$TMP/peer-state" || return 1
  first=${PEERS[0]#*=}
  (cd "$TMP/spec" && "$first" spec) || return 1
  for p in "${PEERS[@]}"; do
    name=${p%%=*}
    for kind in true sleep; do
      b=$TMP/bundles/$name-$kind
      mkdir -p "$b" || return 1
      if [[ $kind == true ]]; then args='["/bin/true"]'; else args='["/bin/sleep","3600"]'; fi
      # Workload argv, no terminal, the shared read-only rootfs, and a cgroup
      # under this run's parent. Namespaces stay as generated (they include
      # a network namespace, like Quilt's default --network none).
      if command -v python3 >/dev/null; then
        python3 - "$TMP/spec/config.json" "$b/config.json" "$args" "$TMP/peer-rootfs" "/$PARENT-peers/$name-$kind" <<'PY' || return 1
import json, sys
src, dst, args, rootfs, cgroup = sys.argv[1:]
c = json.load(open(src))
c["process"]["args"] = json.loads(args)
c["process"]["terminal"] = False
c["root"] = {"path": rootfs, "readonly": True}
c["linux"]["cgroupsPath"] = cgroup
json.dump(c, open(dst, "w"), indent=2)
PY
      else
        jq --argjson a "$args" --arg r "$TMP/peer-rootfs" --arg cg "/$PARENT-peers/$name-$kind" \
          '.process.args = $a | .process.terminal = false | .root = {path: $r, readonly: true} | .linux.cgroupsPath = $cg' \
          "$TMP/spec/config.json" >"$b/config.json" || return 1
      fi
    done
  done
}

# -------------------------------------------------------------- reap gate --
if [[ -n $REAP_N ]]; then
  log "reap gate: $REAP_N containers, 16 in flight"
  gate_rc=0
  step "$QB" reap-gate --socket "$SOCK" --out "$OUT/reap_gate.json" --n "$REAP_N" --concurrency 16 \
    --data-dir "$DATA" --cgroup-parent "$PARENT" --quiltd-pid "$QUILTD_PID" || gate_rc=$?
  [[ -f $OUT/reap_gate.json ]] || die "the reap gate did not produce a result"
  finish
  exit "$gate_rc"
fi

# ---------------------------------------------------------------- cluster --
if [[ -n $CLUSTER ]]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -x $PG_BIN/postgres ]] || die "--cluster needs PostgreSQL (apt-get install postgresql)"
  # Its server trusts every local connection: only inside the run's own
  # network namespace.
  [[ -n $NETNS ]] || die "--cluster needs a network namespace of its own (ip netns, from iproute2)"
  log "cluster: PostgreSQL ($PG_BIN) and $CLUSTER nodes${NETNS:+ in network namespace $NETNS}"
  PG_PORT=$((20000 + RANDOM % 20000))
  chmod 711 "$TMP"
  mkdir -p "$TMP/pg"
  chown postgres: "$TMP/pg" && chmod 700 "$TMP/pg"
  AS_PG=(setpriv --reuid postgres --regid postgres --init-groups)
  (cd "$TMP/pg" && "${AS_PG[@]}" "$PG_BIN/initdb" -D "$TMP/pg/data" -A trust -U quilt -E UTF8 \
    --locale=C --no-sync >"$TMP/pg-initdb.log" 2>&1) || { cat "$TMP/pg-initdb.log" >&2; die "initdb failed"; }
  (cd "$TMP/pg" && exec setsid "${NS_EXEC[@]}" "${AS_PG[@]}" "$PG_BIN/postgres" -D "$TMP/pg/data" \
    -k "$TMP/pg" -c listen_addresses=127.0.0.1 -p "$PG_PORT" -c max_connections=200 \
    >"$TMP/pg.log" 2>&1 </dev/null) &
  PG_PID=$!
  PG_READY=0
  for _ in $(seq 200); do
    "${NS_EXEC[@]}" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && { PG_READY=1; break; }
    kill -0 "$PG_PID" 2>/dev/null || { tail -n 20 "$TMP/pg.log" >&2; die "PostgreSQL did not start"; }
    sleep 0.1
  done
  [[ $PG_READY -eq 1 ]] || { tail -n 20 "$TMP/pg.log" >&2; die "PostgreSQL was not ready within 20 s"; }
  DB_URL="postgres://quilt@127.0.0.1:$PG_PORT/postgres"
  # One CA for the cluster, one certificate for every node (127.0.0.1).
  (cd "$TMP" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout ca.key -out ca.pem -days 1 -subj "/CN=quilt bench CA" \
    && printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >node.ext \
    && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout node.key \
      -out node.csr -subj "/CN=quilt bench node" \
    && openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out node.pem \
      -days 1 -extfile node.ext) >"$TMP/openssl.log" 2>&1 || { cat "$TMP/openssl.log" >&2; die "openssl failed"; }
  NODE_SOCKS=""
  for i in $(seq "$CLUSTER"); do
    mkdir -p "$TMP/node$i"
    NO_COLOR=1 setsid "${NS_EXEC[@]}" "$QUILTD" --data-dir "$TMP/node$i" --socket "$TMP/node$i.sock" \
      --cgroup-parent "$PARENT-n$i" --start-queue "$START_QUEUE" --database "$DB_URL" \
      --node-name "node$i" --listen "127.0.0.1:$((PG_PORT + i))" --tls-cert "$TMP/node.pem" \
      --tls-key "$TMP/node.key" --tls-client-ca "$TMP/ca.pem" "${QUILTD_ARGS[@]}" \
      >"$TMP/node$i.log" 2>&1 </dev/null &
    NODE_PIDS+=($!)
    "$QB" wait-ready --socket "$TMP/node$i.sock" --timeout 60 --pid "$!" \
      || { tail -n 20 "$TMP/node$i.log" >&2; die "node$i did not become ready"; }
    NODE_SOCKS+="${NODE_SOCKS:+,}$TMP/node$i.sock"
  done
  if [[ $MODE == quick ]]; then CL_N=100; CL_STARTS=100; else CL_N=1000; CL_STARTS=600; fi
  measure cluster "$QB" cluster --nodes "$NODE_SOCKS" --sqlite-socket "$SOCK" \
    --out "$OUT/cluster.json" --n "$CL_N" --starts "$CL_STARTS"
  finish
  [[ -z $FAILED_STEPS ]] || die "failed measurements: $FAILED_STEPS"
  exit 0
fi

# ------------------------------------------------------------------ scale --
if [[ -n $SCALE ]]; then
  scale_ns=()
  scale_peers=()
  if [[ ${#PEERS[@]} -gt 0 ]]; then
    if prepare_bundles; then
      for p in "${PEERS[@]}"; do scale_peers+=("--${p%%=*}" "${p#*=}"); done
      scale_peers+=(--bundles "$TMP/bundles" --state-root "$TMP/peer-state" --id-prefix "qb-$RAND")
      scale_ns=("${PEER_NS[@]}")
    else
      echo "benchmark: could not prepare the OCI bundles: scale runs without the peers" >&2
      FAILED_STEPS+="peers-setup "
    fi
  fi
  log "scale: the density measurement at $SCALE live containers${scale_peers[0]:+, then ${PEERS[*]%%=*} at the same counts}"
  measure scale "${scale_ns[@]}" "$QB" scale --socket "$SOCK" --out "$OUT/scale.json" --levels "$SCALE" \
    --data-dir "$DATA" --cgroup-parent "$PARENT" --quiltd-pid "$QUILTD_PID" "${scale_peers[@]}"
  finish
  [[ -z $FAILED_STEPS ]] || die "failed measurements: $FAILED_STEPS"
  exit 0
fi

# ----------------------------------------------------------- measurements --
log "1/8 classic: 6 x (quilt create + 100 quilt status)"
measure classic "$QB" classic --socket "$SOCK" --quilt "$QUILT" --runs 6 --statuses 100 --out "$OUT/classic.json"

log "2/8 API latency (${API_ARGS[*]})"
measure api "$QB" api --socket "$SOCK" "${API_ARGS[@]}" --out "$OUT/api.json"

log "3/8 time to running ($TTR_N, then $(( (TTR_N + 1) / 2 )) each after 50 ms idle), sequential start rate ($SEQ_N), pause ($PAUSE_N), fairness ($BURST-create burst), warm pool ($TTR_N adopted, $TTR_N cold)"
measure ttr "$QB" ttr --socket "$SOCK" --n "$TTR_N" --out "$OUT/ttr.json"
measure seqrate "$QB" seqrate --socket "$SOCK" --n "$SEQ_N" --out "$OUT/seqrate.json"
measure pause "$QB" pause --socket "$SOCK" --n "$PAUSE_N" --out "$OUT/pause.json"
measure fairness "$QB" fairness --socket "$SOCK" --burst "$BURST" --probes "$PROBES" --out "$OUT/fairness.json"
measure pool "$QB" pool --socket "$SOCK" --n "$TTR_N" --out "$OUT/pool.json"

if [[ ${#PEERS[@]} -gt 0 ]]; then
  log "4/8 peers: ${PEERS[*]} (private mount ns without cgroup2: $PEER_NS_NEEDED)"
  if prepare_bundles; then
    peer_args=()
    for p in "${PEERS[@]}"; do peer_args+=("--${p%%=*}" "${p#*=}"); done
    measure peers "${PEER_NS[@]}" "$QB" peers --socket "$SOCK" --quilt "$QUILT" "${peer_args[@]}" \
      --bundles "$TMP/bundles" --state-root "$TMP/peer-state" \
      --iterations "$PEER_ITERS" --states "$PEER_STATES" --id-prefix "qb-$RAND" --out "$OUT/peers.json"
  else
    echo "benchmark: could not prepare the OCI bundles for the peers" >&2
    FAILED_STEPS+="peers-setup "
  fi
else
  log "4/8 peers: skipped ($SKIPPED)"
fi

if [[ -n $NETNS ]]; then
  log "5/8 network: --network bridge against none ($NET_N each), and against the peers' run"
  net_args=()
  if [[ -d $TMP/bundles ]]; then
    for p in "${PEERS[@]}"; do net_args+=("--${p%%=*}" "${p#*=}"); done
    net_args+=(--bundles "$TMP/bundles" --state-root "$TMP/peer-state")
  fi
  measure network "${PEER_NS[@]}" "$QB" network --socket "$SOCK" --quilt "$QUILT" "${net_args[@]}" \
    --n "$NET_N" --id-prefix "qb-$RAND" --out "$OUT/network.json"
else
  log "5/8 network: skipped (no network namespace for quiltd)"
fi

log "6/8 throughput: 1, 8, 32, 128 clients x ${TP_SECONDS} s"
measure throughput "$QB" throughput --socket "$SOCK" --clients 1,8,32,128 --seconds "$TP_SECONDS" \
  --drain-timeout "$TP_DRAIN" --out "$OUT/throughput.json"

log "7/8 density: $DENSITY_N idle containers"
measure density "$QB" density --socket "$SOCK" --n "$DENSITY_N" --gets "$DENSITY_GETS" \
  --data-dir "$DATA" --cgroup-parent "$PARENT" --quiltd-pid "$QUILTD_PID" --out "$OUT/density.json"

log "8/8 summary"
finish
if [[ -n $FAILED_STEPS ]]; then
  die "failed measurements: $FAILED_STEPS(see above and $TMP/quiltd.log, which is deleted on exit)"
fi
