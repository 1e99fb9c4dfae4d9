# losslab container image.
#
# Two stages. The builder compiles the release binary; the runtime stage holds that one
# binary on Debian slim and runs it as an unprivileged user. Builder and runtime are the
# same Debian release (bookworm), so the binary links against the glibc it runs with.
# Plain builder on purpose: no BuildKit-only syntax (no RUN --mount), so it builds with
# any `docker build`, the legacy builder included.
#
#   docker build -t losslab .
#   docker run --rm -p 8080:8080 losslab

FROM rust:1.95-slim-bookworm AS builder

WORKDIR /build

# Strip symbols from the binary in this build only (Cargo.toml stays as it is); panics
# still print their message, only the backtrace loses function names.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols

# 1. The dependencies alone, compiled against a stub crate, in a layer that only Cargo.toml
#    and Cargo.lock invalidate: a source change then recompiles losslab alone, not all its
#    dependencies. The stub is an empty lib, an empty main and an empty file for each
#    [[bench]] the manifest declares (cargo checks that declared targets exist, though a
#    release build never compiles benches). A pure speed-up: should the stub not stand in
#    for the crate (a build script, say), this step builds nothing and step 2 builds
#    everything. The stub's own artifacts are removed so step 2 never mistakes them for
#    the real crate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && awk '/^\[/ { bench = ($0 == "[[bench]]") } \
            bench && /^name *=/ { gsub(/^name *= *"|".*$/, ""); print "fn main() {}" > ("benches/" $0 ".rs") }' \
           Cargo.toml \
    && (cargo build --release --locked || echo "dependency pre-build skipped; step 2 builds all") \
    && rm -rf src benches target/release/losslab target/release/losslab.d \
       target/release/.fingerprint/losslab-* target/release/deps/losslab-* \
       target/release/deps/liblosslab-*

# 2. Everything `cargo build` reads, and nothing else: .dockerignore is an allow-list
#    (Cargo.toml, Cargo.lock, src/, static/, openapi/, benches/, build.rs), so one COPY
#    takes exactly those that exist. static/ (the playground) and openapi/ are embedded in
#    the binary at compile time; benches/ is there because cargo refuses a manifest whose
#    declared bench targets are missing. target/ and the rest never reach the daemon.
COPY . .
RUN cargo build --release --locked \
    && install -D -m 0755 target/release/losslab /out/losslab


FROM debian:bookworm-slim

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="losslab" \
      org.opencontainers.image.description="Loss functions, their gradients and gradient-descent training runs over HTTP" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="debian:bookworm-slim"

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a numeric USER, and the
# manifests in deploy/k8s/ name the same 10001. The passwd entry is only so tools show a name.
RUN groupadd --system --gid 10001 losslab \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin losslab

COPY --from=builder /out/losslab /usr/local/bin/losslab

USER 10001:10001

# Listen on all interfaces inside the container; every other setting keeps its default
# (API.md's limits table) unless the environment says otherwise.
ENV LOSSLAB_ADDR=0.0.0.0:8080
EXPOSE 8080

# `losslab healthcheck` GETs /healthz on LOSSLAB_ADDR and exits 0 only on a 200 within 2 s:
# no shell, curl or wget needed in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/losslab", "healthcheck"]

# SIGTERM (the default, stated): /readyz turns 503, serving goes on for
# LOSSLAB_SHUTDOWN_DELAY_SECS, then in-flight requests drain for up to LOSSLAB_GRACE_SECS.
# Give `docker stop` a timeout of at least their sum (compose: stop_grace_period).
STOPSIGNAL SIGTERM

ENTRYPOINT ["/usr/local/bin/losslab"]
CMD ["serve"]
