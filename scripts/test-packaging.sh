#!/usr/bin/env bash
# Tests of the appliance packaging: systemd unit, installer, ARM builds.
#
#   scripts/test-packaging.sh
#
#   (a) systemd/biogestor.service passes `systemd-analyze verify` without any message, carries
#       the required directives, and its `systemd-analyze security` exposure is printed; the
#       native binary then does a serve round trip under the unit's SystemCallFilter=,
#       RestrictAddressFamilies= and MemoryDenyWriteExecute= (applied with seccomp, with any
#       violation killing the process);
#   (b) scripts/install.sh into temporary DESTDIRs: files, modes, generated secrets, idempotence,
#       --uninstall / --purge, and the written config accepted by check-config and usable by
#       `serve` with the generated sensor password; the TLS certificate it creates: key 0600,
#       the printed fingerprint equal to openssl's, HTTPS and MQTT over TLS served with it (a
#       reading published by mosquitto_pub --cafile is committed), kept on re-runs;
#   (c) with RUN_ARM=1 (default): scripts/cross-build.sh aarch64 and armv7, size goal, then
#       scripts/arm-smoke.sh;
#   (d) shellcheck of the packaging scripts.
#
# Environment: BIN (native binary, default target/release/biogestor, built if missing),
# RUN_ARM (1), ARM_MAX_BYTES (14000000, size goal of the aarch64 binary: catches symbols or a
# stray C library creeping in; the alarm notifications (HTTPS webhook, SMTP) and the bridge's
# TLS client took it from 9.8 to 12.9 MB), and the SMOKE_*
# variables of scripts/arm-smoke.sh. Installs the Debian packages it needs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RUN_ARM=${RUN_ARM:-1}
ARM_MAX_BYTES=${ARM_MAX_BYTES:-14000000}
TD=${CARGO_TARGET_DIR:-$ROOT/target/arm}
BIN=${BIN:-$ROOT/target/release/biogestor}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
UNIT=$ROOT/systemd/biogestor.service
PY=/usr/bin/python3

# shellcheck source=scripts/arm-smoke.sh
source "$ROOT/scripts/arm-smoke.sh"
export BIOGESTOR_NATIVE=$BIN

PASSED=0
FAILED=0
FAILURES=()
ok() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
bad() { FAILED=$((FAILED + 1)); FAILURES+=("$*"); echo "FAIL - $*"; }
# check DESCRIPTION COMMAND...: runs the command, counts the result.
check() {
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else bad "$desc"; fi
}
section() { echo; echo "== $* =="; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

section "prerequisites"
smoke_apt_ensure systemd file curl jq iproute2 python3 python3-seccomp shellcheck openssl mosquitto-clients
if [ ! -x "$BIN" ]; then
    echo "building $BIN"
    cargo build --locked --release --bin biogestor
fi
[ -x "$BIN" ] || { echo "native binary $BIN not found" >&2; exit 1; }
echo "native binary: $BIN ($("$BIN" --version))"

# cfg FILE dotted.key: a value of a TOML file (booleans as true/false), parsed by tomllib.
cfg() {
    "$PY" - "$1" "$2" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    d = tomllib.load(f)
for part in sys.argv[2].split("."):
    d = d[part]
print(str(d).lower() if isinstance(d, bool) else d)
EOF
}

# ---------------------------------------------------------------------------------------------
section "(a) systemd unit"

unit_copy=$WORK/unit/biogestor.service
mkdir -p "$WORK/unit"
sed "s#^ExecStart=/usr/local/bin/biogestor #ExecStart=$BIN #" "$UNIT" >"$unit_copy"

verify_clean() {
    local err rc=0
    err=$(systemd-analyze verify "$unit_copy" 2>&1 >/dev/null) || rc=$?
    if [ "$rc" -ne 0 ] || [ -n "$err" ]; then
        echo "systemd-analyze verify (exit $rc):" >&2
        echo "$err" >&2
        return 1
    fi
}
check "ExecStart of the test copy points to the native binary" grep -q "^ExecStart=$BIN serve --config /etc/biogestor/config.toml\$" "$unit_copy"
check "systemd-analyze verify: no warnings, no errors" verify_clean

unit_has() { grep -qxF "$1" "$UNIT"; }
missing=()
for d in "Type=notify" "NotifyAccess=main" "WatchdogSec=30" \
    "ExecStart=/usr/local/bin/biogestor serve --config /etc/biogestor/config.toml" \
    "User=biogestor" "Group=biogestor" "StateDirectory=biogestor" "ConfigurationDirectory=biogestor" \
    "NoNewPrivileges=yes" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" "PrivateDevices=yes" \
    "ProtectKernelTunables=yes" "ProtectKernelModules=yes" "ProtectKernelLogs=yes" \
    "ProtectControlGroups=yes" "ProtectClock=no" "ProtectHostname=yes" \
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" "RestrictNamespaces=yes" "LockPersonality=yes" \
    "MemoryDenyWriteExecute=yes" "RestrictRealtime=yes" "SystemCallFilter=@system-service" \
    "SystemCallArchitectures=native" "CapabilityBoundingSet=CAP_SYS_TIME" \
    "AmbientCapabilities=CAP_SYS_TIME" "SystemCallFilter=@clock" "Restart=on-failure" "TimeoutStopSec=30" \
    "LimitNOFILE=8192"; do
    unit_has "$d" || missing+=("$d")
done
check "unit carries the required directives${missing[*]:+ (missing: ${missing[*]})}" test ${#missing[@]} -eq 0
no_forbidden() { ! grep -qE '^(LogsDirectory|Environment=.*RUST_LOG|DynamicUser)' "$UNIT"; }
check "unit has no LogsDirectory=, RUST_LOG or DynamicUser=" no_forbidden
check "unit file has a MemoryMax= limit" grep -q '^MemoryMax=' "$UNIT"

score=$(systemd-analyze security --offline=yes "$unit_copy" 2>/dev/null | grep 'Overall exposure level' || true)
echo "info - systemd-analyze security: ${score#*: }"

# Sandbox equivalent of the unit's seccomp-based settings, killing the process on any violation
# (the unit itself answers EPERM): proves the binary needs no filtered call, no other socket
# family and no writable+executable memory while serving, ingesting and shutting down.
cat >"$WORK/sandbox.py" <<'EOF'
import ctypes, os, socket, subprocess, sys
import seccomp

unit, cmd = sys.argv[1], sys.argv[2:]
allow, deny, families, mdwe = set(), set(), None, False

def expand(name, seen):
    if not name.startswith("@"):
        return {name}
    if name in seen:
        return set()
    seen.add(name)
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], check=True,
                         capture_output=True, text=True).stdout.splitlines()[1:]
    result = set()
    for line in out:
        line = line.strip()
        if line and not line.startswith("#"):
            result |= expand(line, seen)
    return result

for raw in open(unit):
    line = raw.strip()
    if line.startswith("#") or "=" not in line:
        continue
    key, val = line.split("=", 1)
    if key == "SystemCallFilter":
        # In order, as systemd applies them: a later allow line puts back calls an earlier
        # deny line took out (e.g. @clock after ~@privileged).
        names = set()
        for tok in val.lstrip("~").split():
            names |= expand(tok, set())
        if val.startswith("~"):
            allow -= names
            deny |= names
        else:
            allow |= names
            deny -= names
    elif key == "RestrictAddressFamilies":
        families = [int(getattr(socket, f)) for f in val.split()]
    elif key == "MemoryDenyWriteExecute":
        mdwe = val.strip() in ("yes", "true", "1", "on")
if not allow:
    sys.exit("sandbox: no SystemCallFilter allow list in " + unit)

allowed = allow - deny
A, PROT_WRITE, PROT_EXEC, SHM_EXEC = seccomp.Arg, 0x2, 0x4, 0o100000
f = seccomp.SyscallFilter(defaction=seccomp.KILL_PROCESS)
for n in sorted(allowed - {"socket", "mmap", "mprotect", "pkey_mprotect", "shmat"}):
    try:
        f.add_rule(seccomp.ALLOW, n)
    except (RuntimeError, ValueError):
        pass  # not a system call of this architecture
if "socket" in allowed:
    if families is None:
        f.add_rule(seccomp.ALLOW, "socket")
    for fam in families or []:
        f.add_rule(seccomp.ALLOW, "socket", A(0, seccomp.EQ, fam))
for n in ("mmap", "mprotect", "pkey_mprotect"):
    if n not in allowed:
        continue
    if not mdwe:
        f.add_rule(seccomp.ALLOW, n)
    elif n == "mmap":
        f.add_rule(seccomp.ALLOW, n, A(2, seccomp.MASKED_EQ, PROT_EXEC, 0))
        f.add_rule(seccomp.ALLOW, n, A(2, seccomp.MASKED_EQ, PROT_WRITE | PROT_EXEC, PROT_EXEC))
    else:
        f.add_rule(seccomp.ALLOW, n, A(2, seccomp.MASKED_EQ, PROT_EXEC, 0))
if "shmat" in allowed:
    f.add_rule(seccomp.ALLOW, "shmat", *([A(2, seccomp.MASKED_EQ, SHM_EXEC, 0)] if mdwe else []))
if ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    sys.exit("sandbox: PR_SET_NO_NEW_PRIVS failed")
f.load()
os.execvp(cmd[0], cmd)
EOF
sandbox_rejects_wx() {
    # Control: the sandbox must stop a process that maps writable+executable memory.
    ! { "$PY" "$WORK/sandbox.py" "$UNIT" "$PY" -c \
        'import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)'; } 2>/dev/null
}
check "sandbox control: a writable+executable mapping is stopped" sandbox_rejects_wx
check "native binary serves under the unit's syscall filter, address families and W^X" \
    serve_smoke sandbox "$BIN" "$PY" "$WORK/sandbox.py" "$UNIT"

# ---------------------------------------------------------------------------------------------
section "(b) installer"

D1=$WORK/root1
D2=$WORK/root2
mkdir -p "$D1" "$D2"
CONF1=$D1/etc/biogestor/config.toml
CONF2=$D2/etc/biogestor/config.toml
install_into() { DESTDIR=$1 BIN=$BIN "$ROOT/scripts/install.sh" "${@:2}" >"$WORK/install-$(basename "$1").log" 2>&1; }
is_installed_bin() { [ -x "$1" ] && cmp -s "$1" "$BIN"; }
lacks() { ! grep -q "$1" "$2"; }
matches() { [[ $1 =~ $2 ]]; }
all_differ() { while [ $# -ge 2 ]; do [ "$1" != "$2" ] || return 1; shift 2; done; }
records_actions() {
    grep -q '^useradd .*biogestor$' "$1" && grep -q '^systemctl enable --now biogestor' "$1" \
        && [ "$(sha /etc/passwd)" = "$passwd_before" ]
}
sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
# The plain listeners of an installed config (its TLS listeners are tested by serves_tls).
serves_with_config() {
    (export BIOGESTOR_HTTP__TLS_BIND="" BIOGESTOR_MQTT__TLS_BIND="" BIOGESTOR_TLS__CERT="" BIOGESTOR_TLS__KEY=""
     SMOKE_CONFIG=$1 SMOKE_MQTT_PASSWORD=$2 serve_smoke installed-config "$BIN")
}
reinstall_keeps_config() { install_into "$1" && [ "$(sha "$2")" = "$3" ]; }
purged() { [ ! -e "$1/etc/biogestor" ] && [ ! -e "$1/var/lib/biogestor" ] && [ ! -e "$1/usr/local/bin/biogestor" ]; }

passwd_before=$(sha /etc/passwd)
check "install.sh into DESTDIR 1 succeeds" install_into "$D1"
check "install.sh into DESTDIR 2 succeeds" install_into "$D2"
check "binary installed, executable, identical to BIN" is_installed_bin "$D1/usr/local/bin/biogestor"
check "unit installed to /etc/systemd/system" cmp -s "$UNIT" "$D1/etc/systemd/system/biogestor.service"
check "config.toml present with mode 0640" test "$(stat -c %a "$CONF1" 2>/dev/null)" = 640
check "config is valid TOML with data_dir /var/lib/biogestor" test "$(cfg "$CONF1" storage.data_dir)" = /var/lib/biogestor
check "anonymous MQTT off" test "$(cfg "$CONF1" mqtt.allow_anonymous)" = false
check "placeholder password gone" lacks cambiar-esta-clave "$CONF1"
pw1=$(cfg "$CONF1" mqtt.users.sensor 2>/dev/null || true)
jwt1=$(cfg "$CONF1" auth.jwt_secret 2>/dev/null || true)
mt1=$(cfg "$CONF1" auth.metrics_token 2>/dev/null || true)
pw2=$(cfg "$CONF2" mqtt.users.sensor 2>/dev/null || true)
jwt2=$(cfg "$CONF2" auth.jwt_secret 2>/dev/null || true)
mt2=$(cfg "$CONF2" auth.metrics_token 2>/dev/null || true)
check "random sensor password of >= 16 characters" matches "$pw1" '^[A-Za-z0-9]{16,}$'
check "jwt_secret of >= 32 characters" matches "$jwt1" '^[A-Za-z0-9]{32,}$'
check "metrics_token of >= 16 characters" matches "$mt1" '^[A-Za-z0-9]{16,}$'
check "two installs get different password, jwt_secret and metrics_token" \
    all_differ "$pw1" "$pw2" "$jwt1" "$jwt2" "$mt1" "$mt2"
check "DESTDIR mode records user creation and systemctl, host users untouched" \
    records_actions "$D1/.install-actions"
check "check-config accepts the written config" \
    env BIOGESTOR_STORAGE__DATA_DIR="$D1/var/lib/biogestor" BIOGESTOR_TLS__CERT="$D1/etc/biogestor/tls/cert.pem" \
    BIOGESTOR_TLS__KEY="$D1/etc/biogestor/tls/key.pem" "$BIN" check-config --config "$CONF1"

sum_before=$(sha "$CONF1")
echo "marker" >"$D1/var/lib/biogestor/marker"
check "re-running install.sh into the same DESTDIR succeeds" install_into "$D1"
check "re-running keeps config.toml byte-identical" test "$(sha "$CONF1")" = "$sum_before"
check "re-running keeps the data" test -f "$D1/var/lib/biogestor/marker"

check "the written config serves, with the generated sensor password" serves_with_config "$CONF1" "$pw1"

TLS1=$D1/etc/biogestor/tls
# The fingerprint line the installer printed, and openssl's for the file it wrote.
printed_fp() { grep -o 'sha256 Fingerprint=[0-9A-F:]*' "$WORK/install-root1.log" | tail -1 | cut -d= -f2; }
openssl_fp() { openssl x509 -noout -fingerprint -sha256 -in "$1" | cut -d= -f2; }
fp_matches() { local p; p=$(printed_fp); [ -n "$p" ] && [ "$p" = "$(openssl_fp "$TLS1/cert.pem")" ]; }
# serves_tls CONF SENSOR_PASSWORD: serve the installed config (loopback ports, DESTDIR paths);
# HTTPS and MQTT over TLS must work with the created certificate pinned and only with it.
serves_tls() (
    set -euo pipefail
    local conf=$1 pw=$2 tmp hp mp hs ms pid="" ok=0 token metrics
    tmp=$(mktemp -d)
    # shellcheck disable=SC2317  # runs from the EXIT trap
    _stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$tmp"; }
    trap _stop EXIT
    hp=$(smoke_free_port); mp=$(smoke_free_port "$hp"); hs=$(smoke_free_port "$hp $mp"); ms=$(smoke_free_port "$hp $mp $hs")
    env BIOGESTOR_HTTP__BIND="127.0.0.1:$hp" BIOGESTOR_MQTT__BIND="127.0.0.1:$mp" \
        BIOGESTOR_HTTP__TLS_BIND="127.0.0.1:$hs" BIOGESTOR_MQTT__TLS_BIND="127.0.0.1:$ms" \
        BIOGESTOR_STORAGE__DATA_DIR="$tmp/data" \
        BIOGESTOR_TLS__CERT="$TLS1/cert.pem" BIOGESTOR_TLS__KEY="$TLS1/key.pem" \
        "$BIN" serve --config "$conf" >"$tmp/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 30); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 --cacert "$TLS1/cert.pem" "https://localhost:$hs/healthz" || true)" = 200 ]; then
            ok=1
            break
        fi
        sleep 1
    done
    [ "$ok" = 1 ] || { echo "HTTPS /healthz never answered 200 with the pinned certificate" >&2; tail -n 20 "$tmp/serve.log" >&2; return 1; }
    if curl -s -o /dev/null --max-time 3 "https://localhost:$hs/healthz"; then
        echo "curl accepted the self-signed certificate without --cacert" >&2
        return 1
    fi
    mosquitto_pub -h localhost -p "$ms" --cafile "$TLS1/cert.pem" -u sensor -P "$pw" -q 1 \
        -t Prueba -m '{"temperatura": 31.5}' || { echo "mosquitto_pub over TLS failed" >&2; return 1; }
    token=$(cfg "$conf" auth.metrics_token)
    for _ in $(seq 1 20); do
        metrics=$(curl -fsS --max-time 5 --cacert "$TLS1/cert.pem" -H "Authorization: Bearer $token" \
            "https://localhost:$hs/metrics") || { echo "GET /metrics over HTTPS failed" >&2; return 1; }
        if grep -Eq '^biogestor_readings_committed_total [1-9]' <<<"$metrics"; then return 0; fi
        sleep 0.5
    done
    echo "the reading published over TLS was not committed" >&2
    return 1
)
check "TLS: installer created cert.pem and key.pem (0600) in /etc/biogestor/tls" \
    test -s "$TLS1/cert.pem" -a "$(stat -c %a "$TLS1/key.pem" 2>/dev/null)" = 600
check "TLS: config enables https 8443 and mqtts 8883 with that certificate" \
    test "$(cfg "$CONF1" http.tls_bind) $(cfg "$CONF1" mqtt.tls_bind) $(cfg "$CONF1" tls.cert)" = \
    "0.0.0.0:8443 0.0.0.0:8883 /etc/biogestor/tls/cert.pem"
check "TLS: the fingerprint the installer printed equals openssl x509 -fingerprint -sha256" fp_matches
check "TLS: the installed config serves HTTPS and MQTT over TLS with the created certificate" \
    serves_tls "$CONF1" "$pw1"
cert_before=$(sha "$TLS1/cert.pem")
check "TLS: re-running install.sh keeps the certificate" reinstall_keeps_config "$D1" "$TLS1/cert.pem" "$cert_before"

check "install.sh --uninstall succeeds" install_into "$D1" --uninstall
check "--uninstall removes the binary" test ! -e "$D1/usr/local/bin/biogestor"
check "--uninstall removes the unit" test ! -e "$D1/etc/systemd/system/biogestor.service"
check "--uninstall keeps config.toml unchanged" test "$(sha "$CONF1")" = "$sum_before"
check "--uninstall keeps the data" test -f "$D1/var/lib/biogestor/marker"
check "--uninstall records removing the user" grep -q '^userdel biogestor$' "$D1/.install-actions"
check "install after --uninstall keeps the old config" reinstall_keeps_config "$D1" "$CONF1" "$sum_before"
check "install.sh --uninstall --purge succeeds" install_into "$D2" --uninstall --purge
check "--purge deletes /etc/biogestor and /var/lib/biogestor" purged "$D2"

# ---------------------------------------------------------------------------------------------
section "(c) ARM builds"

if [ "$RUN_ARM" = 1 ]; then
    check "cross-build.sh aarch64" "$ROOT/scripts/cross-build.sh" aarch64
    check "cross-build.sh armv7" "$ROOT/scripts/cross-build.sh" armv7
    a64=$TD/aarch64-unknown-linux-musl/pi/biogestor
    size=$(stat -c %s "$a64" 2>/dev/null || echo 0)
    check "aarch64 binary $size bytes <= $ARM_MAX_BYTES" test "$size" -gt 0 -a "$size" -le "$ARM_MAX_BYTES"
    check "arm-smoke.sh (aarch64 round trip under qemu, armv7)" \
        env SMOKE_REQUIRE_ARMV7=1 "$ROOT/scripts/arm-smoke.sh" "$a64" "$TD/armv7-unknown-linux-gnueabihf/pi/biogestor"
else
    echo "skipped (RUN_ARM=$RUN_ARM)"
fi

# ---------------------------------------------------------------------------------------------
section "(d) shellcheck"

if command -v shellcheck >/dev/null 2>&1; then
    check "shellcheck of the packaging scripts" shellcheck -x \
        scripts/cross-build.sh scripts/arm-smoke.sh scripts/install.sh scripts/test-packaging.sh
else
    echo "skipped (shellcheck not available)"
fi

echo
for f in "${FAILURES[@]}"; do echo "failed: $f"; done
echo "packaging: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
