#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback: etcd and kube-apiserver (from
# scripts/ensure-kube.sh) on free ports, TLS with a throwaway CA, a system:masters token, RBAC
# authorization, a service-account signing key (TokenRequest works), and an audit log.
# Usage: scripts/kube-up.sh DIR [PID]
# Everything lands in DIR: admin.kubeconfig, ca.crt, url, token, audit.log (a link into
# TRAILKEEPER_K8S_AUDIT_DIR when that is set), the logs and etcd's data.
# Returns once /readyz answers. Both processes stop, and DIR is removed, when PID (default: the
# caller) exits. No controller-manager runs: namespaces never finish deleting, nothing is
# garbage-collected, and no pod starts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: kube-up.sh DIR [PID]}
owner=${2:-$PPID}
bin=${TRAILKEEPER_KUBE_BIN:-$("$root/scripts/ensure-kube.sh")}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
cd "$dir"

ssl() { openssl "$@" >/dev/null 2>&1; }
ssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=trailkeeper-test-ca -keyout ca.key -out ca.crt
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > server.ext
ssl req -newkey rsa:2048 -nodes -subj /CN=kube-apiserver -keyout server.key -out server.csr
ssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 -extfile server.ext -out server.crt
ssl genrsa -out sa.key 2048
ssl rsa -in sa.key -pubout -out sa.pub
token=$(openssl rand -hex 16)
echo "$token" > token
echo "$token,trailkeeper-admin,trailkeeper-admin,\"system:masters\"" > tokens.csv
# The audit log records the requests of service accounts (the operator's identities in the tests)
# and nothing else: the tests' own admin requests would only make it large. With
# TRAILKEEPER_K8S_AUDIT_DIR set (scripts/test.sh), it is written there, to outlive DIR: after the
# whole run, tests/chart.rs judges the chart's RBAC against every request in those logs.
printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n  userGroups: ["system:serviceaccounts"]\n- level: None\n' > audit-policy.yaml
audit_log="$dir/audit.log"
if [ -n "${TRAILKEEPER_K8S_AUDIT_DIR:-}" ]; then
  mkdir -p "$TRAILKEEPER_K8S_AUDIT_DIR"
  audit_log="$(cd "$TRAILKEEPER_K8S_AUDIT_DIR" && pwd)/$(basename "$dir").log"
  ln -sf "$audit_log" audit.log
fi
# Free ports are found by binding and releasing them, so another process may take one before
# etcd or the API server binds it: a start that dies that way is tried again on new ports.
start() {
  read -r etcd_port peer_port port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
  url="https://127.0.0.1:$port"
  rm -rf "$dir/etcd"
  # Debian's etcd 3.4 has no --unsafe-no-fsync: the callers put DIR on tmpfs where they can.
  "$bin/etcd" --name test --data-dir "$dir/etcd" --log-level error \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "test=http://127.0.0.1:$peer_port" >etcd.log 2>&1 &
  etcd_pid=$!
  "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$port" --cert-dir "$dir" \
    --tls-cert-file server.crt --tls-private-key-file server.key --client-ca-file ca.crt \
    --token-auth-file tokens.csv --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file sa.pub \
    --service-account-signing-key-file sa.key --service-cluster-ip-range 10.96.0.0/24 \
    --endpoint-reconciler-type none --audit-policy-file audit-policy.yaml --audit-log-path "$audit_log" \
    --audit-log-maxsize 0 >apiserver.log 2>&1 &
  apiserver_pid=$!
  for _ in $(seq 360); do
    if curl -sf --max-time 2 --cacert ca.crt -H "Authorization: Bearer $token" "$url/readyz" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$apiserver_pid" 2>/dev/null || ! kill -0 "$etcd_pid" 2>/dev/null; then break; fi
    sleep 0.25
  done
  kill "$apiserver_pid" "$etcd_pid" 2>/dev/null || true
  wait "$apiserver_pid" "$etcd_pid" 2>/dev/null || true
  return 1
}

started=false
for attempt in 1 2 3; do
  if start; then started=true; break; fi
  echo "kube-up: start $attempt failed; last lines of the API server's log and etcd's:" >&2
  tail -n 5 apiserver.log etcd.log >&2
done
$started || { echo "kube-up: kube-apiserver did not become ready" >&2; exit 1; }

echo "$url" > url
cat > admin.kubeconfig <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: trailkeeper
  cluster: {server: "$url", certificate-authority: "$dir/ca.crt"}
users:
- name: admin
  user: {token: "$token"}
contexts:
- name: trailkeeper
  context: {cluster: trailkeeper, user: admin}
current-context: trailkeeper
KUBECONFIG

# The watcher outlives this script: it stops both when the owner is gone.
nohup bash -c "while kill -0 $owner 2>/dev/null && kill -0 $apiserver_pid 2>/dev/null; do sleep 0.5; done
  kill $apiserver_pid 2>/dev/null; sleep 1; kill $etcd_pid 2>/dev/null; sleep 1; rm -rf '$dir'" >/dev/null 2>&1 &
echo "$url"
