#!/usr/bin/env bash
# Builds a Kubernetes control plane from upstream Go modules (nothing prebuilt is downloaded):
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from k8s.io/kubernetes, etcd from
# go.etcd.io/etcd/server/v3, kwok from sigs.k8s.io/kwok; the Gateway API's standard-channel CRDs from
# sigs.k8s.io/gateway-api (gateway-api-crds.yaml, for the gateway_api router's tests). Cached per version
# outside the checkout; prints the folder holding the binaries as its last line. KUBEBUILDER_ASSETS (the
# envtest convention) wins when it already holds every binary.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.35.4}     # EKS supports 1.32-1.35
ETCD_VERSION=${ETCD_VERSION:-3.6.6}    # the etcd that Kubernetes 1.35 ships with (build/dependencies.yaml)
KWOK_VERSION=${KWOK_VERSION:-0.7.0}
GATEWAY_API_VERSION=${GATEWAY_API_VERSION:-1.6.3}  # v1.7 needs a newer Go than the machines have
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)

CACHE_ROOT=${SLOW_INJECTION_CACHE:-$HOME/.cache/slow-injection}
OUT=$CACHE_ROOT/kube/v$K8S_VERSION
BIN=$OUT/bin

say() { printf '[kube-build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
ASSETS=${KUBEBUILDER_ASSETS:-}
from_assets() { [ -n "$ASSETS" ] && [ -x "$ASSETS/$1" ]; }  # envtest's convention: etcd, kube-apiserver, kubectl
built() { from_assets "$1" || { [ -x "$BIN/$1" ] && [ -f "$OUT/built-$1" ]; }; }
# bump the last word when the stage files or the fetched CRDs change
STAMP="$K8S_VERSION $ETCD_VERSION $KWOK_VERSION $GATEWAY_API_VERSION stages-3"
complete() {
  local b; for b in "${BINARIES[@]}"; do built "$b" || return 1; done
  [ -f "$BIN/kwok-stages.yaml" ] && [ -f "$BIN/gateway-api-crds.yaml" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$STAMP" ]
}
result() {  # the folder to use: ours, or one that links the KUBEBUILDER_ASSETS binaries in over ours
  if [ -z "$ASSETS" ]; then echo "$BIN"; return; fi
  local merged=$OUT/with-assets b; mkdir -p "$merged"
  for b in "${BINARIES[@]}" kwok-stages.yaml gateway-api-crds.yaml; do
    if from_assets "$b"; then ln -sfn "$ASSETS/$b" "$merged/$b"; else ln -sfn "$BIN/$b" "$merged/$b"; fi
  done
  say "using $(for b in "${BINARIES[@]}"; do from_assets "$b" && printf '%s ' "$b"; done)from KUBEBUILDER_ASSETS=$ASSETS"
  echo "$merged"
}

if complete; then result; exit 0; fi
mkdir -p "$OUT"
exec 9>"$OUT/.lock"
say "waiting for the build lock ($OUT/.lock)"; flock 9   # one build at a time; others wait and reuse it
if complete; then result; exit 0; fi

command -v go >/dev/null || { say "go is not installed: the control plane is built from Go modules"; exit 1; }
export GOMODCACHE=$CACHE_ROOT/go/mod GOCACHE=$CACHE_ROOT/go/build GOFLAGS=-mod=mod GOTOOLCHAIN=local
export CGO_ENABLED=0
mkdir -p "$BIN"
started=$(date +%s)
say "Kubernetes v$K8S_VERSION, etcd v$ETCD_VERSION, kwok v$KWOK_VERSION into $BIN (first build: about 8 min and 5 GB on 2 cores)"

# --- Kubernetes: a scratch module that requires k8s.io/kubernetes and points its staging modules at the
# published k8s.io/<name> v0.Y.Z (its own go.mod's replace lines are ignored when it is a dependency).
src=$OUT/src/kubernetes; mkdir -p "$src"; cd "$src"
minor=${K8S_VERSION#*.}
if ! { built kube-apiserver && built kube-controller-manager && built kube-scheduler && built kubectl; }; then
  say "fetching k8s.io/kubernetes@v$K8S_VERSION"
  kmod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module slowinjection.local/kube-build"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
    echo
    echo "require k8s.io/kubernetes v$K8S_VERSION"
    echo
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 v0.'"$minor"'#p' "$kmod"
  } > go.mod
  say "resolving dependencies (go get)"
  go get "k8s.io/kubernetes/cmd/kube-apiserver@v$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@v$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@v$K8S_VERSION" "k8s.io/kubernetes/cmd/kubectl@v$K8S_VERSION" >&2
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=${K8S_VERSION%%.*} -X $pkg.gitMinor=${minor%%.*}"
    ld="$ld -X $pkg.gitTreeState=clean -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  done
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    built "$cmd" && continue
    t=$(date +%s); say "building $cmd"
    go build -ldflags "$ld" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
    mv "$BIN/$cmd.tmp" "$BIN/$cmd"; touch "$OUT/built-$cmd"
    say "built $cmd in $(( $(date +%s) - t )) s"
  done
fi

# --- etcd
src=$OUT/src/etcd; mkdir -p "$src"; cd "$src"
if ! built etcd; then
  t=$(date +%s); say "building etcd v$ETCD_VERSION"
  printf 'module slowinjection.local/etcd-build\n\ngo %s\n\nrequire go.etcd.io/etcd/server/v3 v%s\n' \
    "$(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')" "$ETCD_VERSION" > go.mod
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
  go build -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN/etcd.tmp" "$BIN/etcd"; touch "$OUT/built-etcd"
  say "built etcd in $(( $(date +%s) - t )) s"
fi

# --- kwok
src=$OUT/src/kwok; mkdir -p "$src"; cd "$src"
if [ ! -f "$OUT/built-kwok" ]; then
  t=$(date +%s); say "building kwok v$KWOK_VERSION"
  printf 'module slowinjection.local/kwok-build\n\ngo %s\n\nrequire sigs.k8s.io/kwok v%s\n' \
    "$(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')" "$KWOK_VERSION" > go.mod
  go get "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" >&2
  go build -ldflags "-s -w" -o "$BIN/kwok.tmp" sigs.k8s.io/kwok/cmd/kwok
  mv "$BIN/kwok.tmp" "$BIN/kwok"; touch "$OUT/built-kwok"
  say "built kwok in $(( $(date +%s) - t )) s"
fi

# kwok's pod behaviour: upstream's own Stage files from the module (ready at once; Job pods complete after
# 1 s, or the delay their pod-complete.stage.kwok.x-k8s.io/delay annotation asks; pods labelled
# pod-container-running-failed.stage.kwok.x-k8s.io=true fail with the annotated exit code; deleted pods go).
stages=$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/kustomize/stage/pod
{ cat "$stages/fast/pod-ready.yaml"; echo "---"
  sed '/jitterDurationMilliseconds:/d' "$stages/general/pod-complete.yaml"; echo "---"
  sed '/jitterDurationMilliseconds:/d' "$stages/chaos/pod-container-running-failed.yaml"; echo "---"
  cat "$stages/fast/pod-delete.yaml"; } > "$BIN/kwok-stages.yaml"

# The Gateway API's standard channel: its CRDs (HTTPRoute, Gateway, GatewayClass, ReferenceGrant, ...) in one
# file; not the channel's ValidatingAdmissionPolicy, which only guards CRD upgrades.
say "fetching sigs.k8s.io/gateway-api@v$GATEWAY_API_VERSION (its standard-channel CRDs)"
crds=$(go mod download -json "sigs.k8s.io/gateway-api@v$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/config/crd/standard
for f in "$crds"/gateway.networking.k8s.io_*.yaml; do
  case $f in *_vap_*) continue ;; esac
  echo "---"; cat "$f"
done > "$BIN/gateway-api-crds.yaml.tmp"
grep -q "^kind: CustomResourceDefinition" "$BIN/gateway-api-crds.yaml.tmp" || { say "no CRDs under $crds"; exit 1; }
mv "$BIN/gateway-api-crds.yaml.tmp" "$BIN/gateway-api-crds.yaml"

echo "$STAMP" > "$OUT/stamp"
say "done in $(( $(date +%s) - started )) s; $(du -sh "$BIN" | cut -f1) of binaries, $(du -sh "$CACHE_ROOT/go" | cut -f1) of Go caches"
result
