#!/usr/bin/env bash
# Build the real Dockerfile, run the image, check it.
#
# No base image can be pulled on this machine, so the two images the Dockerfile names are
# built here as local stand-ins under the same tags:
#   debian:bookworm-slim      Debian bookworm from Debian's packages (debootstrap, minbase,
#                             trimmed like the slim image) + `docker import`
#   rust:1.95-slim-bookworm   the same with gcc and libc6-dev, plus this machine's Rust
#                             toolchain (`rustc --print sysroot`: rustc, cargo, std) copied
#                             in, plus the crates of Cargo.lock from `cargo vendor` and a
#                             cargo config that points at them, offline
# The vendored crates live in the builder stand-in (its $CARGO_HOME), not in the build
# context: the shipped Dockerfile and .dockerignore are used exactly as they are, and cargo
# inside `docker build` (run with --network none) needs no network.
# Stand-ins are only ever tagged where no image of that name exists or the existing one is
# a stand-in itself (label losslab.e2e.standin). The debootstrap results are cached under
# ${CI_CACHE:-/var/cache/losslab-ci}; the images stay in the engine as a layer cache.
#
# When no Docker engine can be started, this says so and skips the image steps (the
# summary line still comes). All traffic to the container is on 127.0.0.1 (host network).
#
#   bash tests/e2e/docker_image.sh

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT" || exit 1

CACHE="${CI_CACHE:-/var/cache/losslab-ci}"
SLIM_TAG="debian:bookworm-slim"
RUST_TAG="rust:1.95-slim-bookworm"
IMAGE="losslab:e2e"
CONTAINER="losslab-e2e-$$"
STANDIN_LABEL="losslab.e2e.standin"
SCRATCH="$(mktemp -d /tmp/losslab-docker.XXXXXX)"
STARTED_DOCKERD=""
DOCKERD_LOG="$SCRATCH/dockerd.log"

cleanup() {
    docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
    if [ -n "$STARTED_DOCKERD" ]; then
        # We started the engine: stop it (by pid) so nothing is left running.
        kill -TERM "$STARTED_DOCKERD" 2>/dev/null || true
        wait_exit "$STARTED_DOCKERD" 20 || kill -KILL "$STARTED_DOCKERD" 2>/dev/null || true
    fi
    e2e_cleanup
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

step_time() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.0f}')" "$1" "$(date +%s.%N)"; }

# One run at a time on a machine: a second run would share (and then stop) the engine the
# first one started, in the middle of its build.
mkdir -p "$CACHE"
exec 9>"$CACHE/docker_image.lock"
if ! flock -w 1800 9; then
    fail "another tests/e2e/docker_image.sh still holds $CACHE/docker_image.lock after 30 min"
    summary
    exit 1
fi

# --- 1. a Docker engine ---------------------------------------------------------------
echo "== Docker engine"
engine_up() { docker info >/dev/null 2>&1; }
start_engine() {
    command -v docker >/dev/null 2>&1 || apt_install docker.io || return 1
    engine_up && return 0
    if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ]; then
        apt_install docker.io || return 1
    fi
    local dockerd
    dockerd="$(command -v dockerd || echo /usr/sbin/dockerd)"
    # No bridge and no iptables rules: builds run with --network none and the container
    # shares the host's loopback, so the engine needs no network of its own.
    "$dockerd" --bridge=none --iptables=false >"$DOCKERD_LOG" 2>&1 &
    STARTED_DOCKERD=$!
    track "$STARTED_DOCKERD"
    local deadline=$(($(date +%s) + 60))
    until engine_up; do
        if ! alive "$STARTED_DOCKERD" || [ "$(date +%s)" -gt "$deadline" ]; then
            return 1
        fi
        sleep 0.5
    done
    # Ours only if it is still running: an engine someone else started answers too, and
    # must not be stopped by us at the end.
    sleep 1
    alive "$STARTED_DOCKERD" || STARTED_DOCKERD=""
}
if ! start_engine; then
    echo "NO DOCKER ENGINE: could not start one on this machine; the image build/run steps are SKIPPED."
    [ -s "$DOCKERD_LOG" ] && tail -5 "$DOCKERD_LOG" | sed 's/^/  | /'
    skip "docker build / run of the Dockerfile (no Docker engine)"
    summary
    exit $?
fi
if [ -n "$STARTED_DOCKERD" ]; then
    pass "Docker engine started (dockerd pid $STARTED_DOCKERD, $(docker version -f '{{.Server.Version}}' 2>/dev/null))"
else
    pass "Docker engine already running ($(docker version -f '{{.Server.Version}}' 2>/dev/null))"
fi
export DOCKER_BUILDKIT=0 # the plain builder: uses local images, never pulls them

# can_tag TAG: no image of that name, or only our stand-in.
can_tag() {
    local label
    docker image inspect "$1" >/dev/null 2>&1 || return 0
    label="$(docker image inspect -f "{{ index .Config.Labels \"$STANDIN_LABEL\" }}" "$1" 2>/dev/null)"
    [ "$label" = "1" ]
}

# --- 2. debootstrap rootfs tarballs (cached) ----------------------------------------------
# The Debian mirror this machine's apt already uses (deb822 *.sources or one-line
# sources.list), never a host written here: the first URI serving a bookworm suite other
# than security.
apt_mirror() {
    python3 - /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources <<'PY'
import sys
for path in sys.argv[1:]:
    try:
        text = open(path).read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for stanza in text.split("\n\n"):
            f = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    k, v = line.split(":", 1)
                    f[k.strip().lower()] = v.split()
            uris, suites = f.get("uris", []), f.get("suites", [])
            if "deb" in f.get("types", []) and "bookworm" in suites:
                for u in uris:
                    if "security" not in u:
                        print(u); sys.exit(0)
    else:
        for line in text.splitlines():
            w = line.split("#")[0].split()
            if len(w) >= 3 and w[0] == "deb":
                rest = [x for x in w[1:] if not x.startswith("[")]
                if len(rest) >= 2 and rest[1] == "bookworm" and "security" not in rest[0]:
                    print(rest[0]); sys.exit(0)
sys.exit(1)
PY
}
MIRROR="$(apt_mirror)"
mkdir -p "$CACHE/debootstrap-debs"
# rootfs_tar NAME [INCLUDE]: a trimmed bookworm minbase rootfs as $CACHE/NAME.tar.
rootfs_tar() {
    local name="$1" include="${2-}" dir="$SCRATCH/rootfs-$1" tar="$CACHE/$1.tar"
    [ -s "$tar" ] && return 0
    need_cmd debootstrap debootstrap || return 1
    echo "  .. debootstrap bookworm ($name${include:+, + $include}) from $MIRROR"
    debootstrap --variant=minbase ${include:+--include="$include"} \
        --cache-dir="$CACHE/debootstrap-debs" bookworm "$dir" "$MIRROR" >"$SCRATCH/debootstrap-$name.log" 2>&1 ||
        { tail -20 "$SCRATCH/debootstrap-$name.log"; return 1; }
    # Trim like the official slim image: no docs, man pages, locales, apt lists or caches.
    rm -rf "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* \
        "$dir"/usr/share/locale/* "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin \
        "$dir"/var/cache/apt/archives/*.deb "$dir"/var/log/*.log "$dir"/tmp/*
    tar --numeric-owner -C "$dir" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$dir"
}
IMPORT_ENV=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    --change "LABEL $STANDIN_LABEL=1" --change 'CMD ["bash"]')

if [ -z "$MIRROR" ]; then
    echo "NO DEBIAN MIRROR: apt on this machine names no bookworm source; the stand-in images cannot be built."
    skip "docker build / run of the Dockerfile (no Debian bookworm mirror in the apt sources)"
    summary
    exit $?
fi
info "Debian mirror from the apt sources: $MIRROR"
echo "== stand-in base images"
t0=$(date +%s.%N)
if can_tag "$SLIM_TAG" && ! docker image inspect "$SLIM_TAG" >/dev/null 2>&1; then
    if rootfs_tar bookworm-slim && docker import "${IMPORT_ENV[@]}" "$CACHE/bookworm-slim.tar" "$SLIM_TAG" >/dev/null; then
        pass "$SLIM_TAG stand-in imported from debootstrap ($(step_time "$t0") s)"
    else
        fail "$SLIM_TAG stand-in (debootstrap + docker import)"
    fi
elif can_tag "$SLIM_TAG"; then
    pass "$SLIM_TAG stand-in already in the engine"
else
    pass "$SLIM_TAG: a real image is present, used as it is"
fi

SYSROOT="$(rustc --print sysroot)"
RUSTC_VERSION="$(rustc --version | awk '{print $2}')"
TOOLCHAIN_TAG="losslab-e2e/rust-toolchain:$RUSTC_VERSION"
# The vendored layer is keyed by Cargo.lock and the toolchain it was made for.
LOCK_SHA="$( (cat Cargo.lock; rustc --version) | sha256sum | cut -c1-16)"
have_sha=""
t0=$(date +%s.%N)
if can_tag "$RUST_TAG"; then
    if ! docker image inspect "$TOOLCHAIN_TAG" >/dev/null 2>&1; then
        if rootfs_tar bookworm-gcc gcc,libc6-dev,ca-certificates; then
            dir="$SCRATCH/rust-rootfs"
            mkdir -p "$dir/usr/local/rust/lib" "$dir/usr/local/cargo/bin"
            tar -C "$dir" -xf "$CACHE/bookworm-gcc.tar"
            # The host's toolchain, less its docs: compiler, cargo, the std of the target.
            cp -a "$SYSROOT/bin" "$dir/usr/local/rust/"
            cp -a "$SYSROOT"/lib/*.so* "$SYSROOT/lib/rustlib" "$dir/usr/local/rust/lib/"
            for b in cargo rustc rustdoc; do ln -s "/usr/local/rust/bin/$b" "$dir/usr/local/cargo/bin/$b"; done
            tar --numeric-owner -C "$dir" -c . | docker import "${IMPORT_ENV[@]}" \
                --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
                --change 'ENV CARGO_HOME=/usr/local/cargo' --change "ENV RUST_VERSION=$RUSTC_VERSION" \
                - "$TOOLCHAIN_TAG" >/dev/null
            rm -rf "$dir"
        fi
    fi
    have_sha="$(docker image inspect -f '{{ index .Config.Labels "losslab.e2e.cargo-lock" }}' "$RUST_TAG" 2>/dev/null || true)"
fi
if can_tag "$RUST_TAG" && [ "$have_sha" = "$LOCK_SHA" ]; then
    pass "$RUST_TAG stand-in already holds the crates of this Cargo.lock and rustc (key $LOCK_SHA)"
elif can_tag "$RUST_TAG"; then
    # cargo vendor: every crate of Cargo.lock, into a temp copy of the repo whose
    # .cargo/config.toml points at vendor/; an offline `cargo metadata --locked` there proves
    # the set complete before it goes into the builder.
    copy="$SCRATCH/repo"
    mkdir -p "$copy/.cargo"
    cp -a Cargo.toml Cargo.lock "$copy/"
    for d in src benches openapi static tests; do [ -e "$d" ] && cp -a "$d" "$copy/"; done
    if (cd "$copy" && cargo vendor --locked vendor >"$SCRATCH/vendor-config.toml" 2>"$SCRATCH/vendor.log"); then
        cp "$SCRATCH/vendor-config.toml" "$copy/.cargo/config.toml"
        check "cargo vendor: the crates of Cargo.lock resolve offline from vendor/ ($(du -sh "$copy/vendor" | cut -f1))" \
            bash -c "cd '$copy' && cargo metadata --locked --offline --format-version 1 >/dev/null"
        mkdir -p "$SCRATCH/builder-ctx"
        mv "$copy/vendor" "$SCRATCH/builder-ctx/vendor"
        # In the stand-in the crates live in $CARGO_HOME, so the real build context needs none.
        sed 's#directory = "vendor"#directory = "/usr/local/cargo/vendor"#' "$SCRATCH/vendor-config.toml" \
            >"$SCRATCH/builder-ctx/config.toml"
        printf '[net]\noffline = true\n' >>"$SCRATCH/builder-ctx/config.toml"
        cat >"$SCRATCH/builder-ctx/Dockerfile" <<EOF
FROM $TOOLCHAIN_TAG
COPY vendor /usr/local/cargo/vendor
COPY config.toml /usr/local/cargo/config.toml
LABEL $STANDIN_LABEL=1 losslab.e2e.cargo-lock=$LOCK_SHA
EOF
        if docker build --network none -q -t "$RUST_TAG" "$SCRATCH/builder-ctx" >"$SCRATCH/builder-build.log" 2>&1; then
            pass "$RUST_TAG stand-in: debootstrap + gcc + host rustc $RUSTC_VERSION + vendored crates ($(step_time "$t0") s)"
        else
            tail -20 "$SCRATCH/builder-build.log"
            fail "$RUST_TAG stand-in build"
        fi
        rm -rf "$SCRATCH/builder-ctx"
    else
        tail -20 "$SCRATCH/vendor.log"
        fail "cargo vendor"
    fi
else
    pass "$RUST_TAG: a real image is present, used as it is (its cargo needs crates.io)"
fi

# --- 3. the real Dockerfile ---------------------------------------------------------------
echo "== docker build of ./Dockerfile (real build context, .dockerignore as shipped)"
t0=$(date +%s.%N)
REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
VERSION="$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)"
if docker build --network none --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" \
    -t "$IMAGE" . >"$SCRATCH/build.log" 2>&1; then
    BUILD_SECS="$(step_time "$t0")"
    pass "docker build -t $IMAGE . (${BUILD_SECS} s)"
else
    BUILD_SECS="$(step_time "$t0")"
    tail -40 "$SCRATCH/build.log" | sed 's/^/  | /'
    fail "docker build -t $IMAGE . (${BUILD_SECS} s)"
    summary
    exit 1
fi
ctx="$(grep -o 'Sending build context to Docker daemon *[0-9.]*[kMG]*B' "$SCRATCH/build.log" | awk '{print $NF}')"
info "build context sent: ${ctx:-?}"
check "the build context is small (.dockerignore keeps target/ out): ${ctx:-?} < 50MB" \
    python3 -c "
import re, sys; m = re.fullmatch(r'([0-9.]+)([kMG]?)B', sys.argv[1]); assert m, sys.argv[1]
n = float(m[1]) * {'': 1, 'k': 1e3, 'M': 1e6, 'G': 1e9}[m[2]]; assert n < 50e6, n" "${ctx:-none}"

SIZE_BYTES="$(docker image inspect -f '{{.Size}}' "$IMAGE")"
SIZE_MB="$(python3 -c "print(f'{int(\"$SIZE_BYTES\") / 1e6:.1f}')")"
BASE_MB="$(python3 -c "print(f'{int(\"$(docker image inspect -f '{{.Size}}' "$SLIM_TAG")\") / 1e6:.1f}')")"
docker create --name "$CONTAINER-cp" "$IMAGE" >/dev/null
docker cp "$CONTAINER-cp:/usr/local/bin/losslab" "$SCRATCH/losslab.bin" >/dev/null 2>&1
docker rm "$CONTAINER-cp" >/dev/null
BIN_MB="$(python3 -c "import os; print(f'{os.path.getsize(\"$SCRATCH/losslab.bin\") / 1e6:.1f}')" 2>/dev/null || echo '?')"
echo "IMAGE SIZE: $IMAGE = ${SIZE_MB} MB (base $SLIM_TAG stand-in ${BASE_MB} MB + losslab binary ${BIN_MB} MB + user entry)"
check "image config: USER 10001:10001, exposes 8080/tcp, LOSSLAB_ADDR=0.0.0.0:8080, exec-form healthcheck" \
    python3 -c "
import json, subprocess
c = json.loads(subprocess.check_output(['docker', 'image', 'inspect', '$IMAGE']))[0]['Config']
assert c['User'] == '10001:10001', c['User']
assert '8080/tcp' in c['ExposedPorts'], c['ExposedPorts']
assert 'LOSSLAB_ADDR=0.0.0.0:8080' in c['Env'], c['Env']
assert c['Healthcheck']['Test'] == ['CMD', '/usr/local/bin/losslab', 'healthcheck'], c['Healthcheck']
assert c['Entrypoint'] == ['/usr/local/bin/losslab'], c['Entrypoint']"
check "image carries the OCI labels (title, version, revision, licenses)" \
    python3 -c "
import json, subprocess
l = json.loads(subprocess.check_output(['docker', 'image', 'inspect', '$IMAGE']))[0]['Config']['Labels']
for k in ('title', 'version', 'revision', 'licenses', 'description'):
    assert l.get('org.opencontainers.image.' + k), (k, l)
assert l['org.opencontainers.image.revision'] == '$REVISION', l"
version_out="$(docker run --rm --network none "$IMAGE" --version 2>&1 | head -1)"
label_version="$(docker image inspect -f '{{ index .Config.Labels "org.opencontainers.image.version" }}' "$IMAGE")"
check "docker run $IMAGE --version says '$version_out', the version label says '$label_version' (Cargo.toml: $VERSION)" \
    test "$version_out" = "losslab $VERSION" -a "$label_version" = "$VERSION"

# --- 4. run it as Kubernetes would: read-only root, no capabilities, no privilege gain ---
echo "== docker run (host network, 127.0.0.1 only; --read-only --cap-drop ALL --security-opt no-new-privileges)"
PORT="$(free_port)"
BASE="http://127.0.0.1:$PORT"
docker run -d --name "$CONTAINER" --network host --read-only --cap-drop ALL \
    --security-opt no-new-privileges --health-interval 2s \
    -e "LOSSLAB_ADDR=127.0.0.1:$PORT" -e LOSSLAB_SHUTDOWN_DELAY_SECS=1 -e LOSSLAB_GRACE_SECS=10 \
    "$IMAGE" >/dev/null
check "container answers GET /healthz 200 on $BASE" wait_status "$BASE/healthz" 200 30
body="$(curl -s --max-time 10 -H 'content-type: application/json' \
    --data-binary '{"predictions":[0.5,1.5,2.0,-1.0],"targets":[0.0,1.0,2.5,-1.0]}' "$BASE/loss/mse")"
check "container: POST /loss/mse gives 0.1875 (hand-computed mse)" \
    python3 -c "import json,sys; r=json.loads(sys.argv[1]); assert r['loss'] == 0.1875 and r['count'] == 4, r" "$body"
check "container: GET / serves the embedded playground page (200)" test "$(http_status GET "$BASE/")" = 200
PID="$(docker inspect -f '{{.State.Pid}}' "$CONTAINER")"
info "container main process: host pid $PID; $(grep -E '^(Uid|Gid|CapEff|NoNewPrivs):' "/proc/$PID/status" | tr -s '\t' ' ' | paste -sd';' -)"
check "the container's main process runs as uid 10001 / gid 10001, not root (/proc/$PID/status)" \
    bash -c "grep -qE '^Uid:\s+10001\s+10001\s+10001\s+10001$' /proc/$PID/status && grep -qE '^Gid:\s+10001\s+10001\s+10001\s+10001$' /proc/$PID/status"
check "... with no effective capabilities and no_new_privs set" \
    bash -c "grep -qE '^CapEff:\s+0+$' /proc/$PID/status && grep -qE '^NoNewPrivs:\s+1$' /proc/$PID/status"
health=""
deadline=$(($(date +%s) + 30))
while [ "$(date +%s)" -le "$deadline" ]; do
    health="$(docker inspect -f '{{.State.Health.Status}}' "$CONTAINER")"
    [ "$health" = healthy ] && break
    sleep 1
done
check "Docker HEALTHCHECK (losslab healthcheck, no shell) reports healthy" test "$health" = healthy

t0=$(date +%s.%N)
docker stop -t 30 "$CONTAINER" >/dev/null
stop_secs="$(step_time "$t0")"
exit_code="$(docker inspect -f '{{.State.ExitCode}}' "$CONTAINER")"
info "docker stop: exit code $exit_code after ${stop_secs} s (shutdown delay 1 s)"
check "docker stop (SIGTERM to the binary as PID 1) ends it with exit code 0, before the kill timeout" \
    test "$exit_code" = 0 -a "$stop_secs" -lt 30

echo "docker image: size ${SIZE_MB} MB, binary ${BIN_MB} MB, build ${BUILD_SECS} s"
summary
