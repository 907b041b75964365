#!/usr/bin/env bash
# Install Biogestor as a systemd service (run as root on the Raspberry Pi or any systemd host).
#
#   sudo scripts/install.sh                   install or upgrade
#   sudo scripts/install.sh --uninstall       remove binary, unit and the `biogestor` user;
#                                             keeps /etc/biogestor and /var/lib/biogestor
#   sudo scripts/install.sh --uninstall --purge   ... and delete configuration and data too
#
# Installs /usr/local/bin/biogestor, the system user `biogestor` (no login, home
# /var/lib/biogestor), /etc/biogestor/config.toml (root:biogestor 0640) and
# /etc/systemd/system/biogestor.service, then enables and starts the service.
#
# The configuration is written only once, from the repository's config.toml with production
# values: data_dir /var/lib/biogestor, anonymous MQTT off, and a random sensor password,
# jwt_secret and metrics_token generated on this unit. Re-running never touches an existing
# /etc/biogestor/config.toml or the data; it replaces the binary and unit and restarts.
#
# TLS: a new configuration also gets HTTPS on port 8443 and MQTT over TLS on 8883 (beside the
# plain 8080 and 1883, so existing sensors keep working), with a self-signed certificate made
# for this unit by `biogestor tls-cert` into /etc/biogestor/tls (its host name, the addresses of
# `hostname -I`, biogestor.local). Its SHA-256 fingerprint is printed at the end, for sensors
# that pin it. An existing certificate is never replaced.
#
# Environment:
#   BIN      binary to install. Default: on aarch64 the static build of scripts/cross-build.sh
#            (target/arm/aarch64-unknown-linux-musl/pi/biogestor), on armv7 the armv7 build,
#            falling back to target/release/biogestor.
#   DESTDIR  install into this directory instead of / (packaging tests, image builds). Nothing
#            is changed on the host: user creation, ownership changes and systemctl calls are
#            only printed and appended to $DESTDIR/.install-actions.
#   CONFIG_SRC  configuration template (default: the repository's config.toml).
#   RUNNER   command prefix to run BIN for its checks, e.g. RUNNER=qemu-aarch64 to install an
#            ARM binary into a DESTDIR (an SD card image) from a PC.
#   TLS      1 (default): a new configuration enables the TLS listeners and the certificate is
#            created; 0: plain HTTP and MQTT only. In DESTDIR mode the certificate names only
#            the host names (no addresses of the building machine), and every unit made from
#            one image shares it: replace it per unit with `biogestor tls-cert --force`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TD=${CARGO_TARGET_DIR:-$ROOT/target/arm}
CONFIG_SRC=${CONFIG_SRC:-$ROOT/config.toml}
UNIT_SRC=$ROOT/systemd/biogestor.service
DESTDIR=${DESTDIR:-}
DESTDIR=${DESTDIR%/}

SVC_USER=biogestor
BIN_PATH=/usr/local/bin/biogestor
ETC_DIR=/etc/biogestor
CONF_PATH=$ETC_DIR/config.toml
STATE_DIR=/var/lib/biogestor
UNIT_PATH=/etc/systemd/system/biogestor.service
SENSOR_USER=sensor
PLACEHOLDER=cambiar-esta-clave
TLS_DIR=$ETC_DIR/tls
TLS=${TLS:-1}
HTTPS_BIND=0.0.0.0:8443
MQTTS_BIND=0.0.0.0:8883

die() { echo "install: error: $*" >&2; exit 1; }
say() { echo "install: $*"; }

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; }

MODE=install
PURGE=0
for arg in "$@"; do
    case $arg in
        --uninstall) MODE=uninstall ;;
        --purge) MODE=uninstall; PURGE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$arg'" ;;
    esac
done

if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $0 $*), or set DESTDIR to install into a directory"
fi

# Host command, or (DESTDIR mode) a line in $DESTDIR/.install-actions.
act() {
    if [ -n "$DESTDIR" ]; then
        echo "$*" >>"$DESTDIR/.install-actions"
        say "(DESTDIR) would run: $*"
    else
        "$@"
    fi
}

have_systemd() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# --- TOML helpers (flat `key = value` lines inside [section] headers) ----------------------

# toml_set FILE SECTION KEY VALUE: replace KEY's line in [SECTION] (VALUE is a TOML literal,
# e.g. "\"text\"" or false); adds the key (and the section) when missing.
toml_set() {
    local file=$1 sec=$2 key=$3 val=$4 tmp
    tmp=$(mktemp "$file.XXXXXX")
    awk -v sec="$sec" -v key="$key" -v val="$val" '
        function header(line,   h) { h = line; sub(/^[ \t]*\[/, "", h); sub(/\].*$/, "", h); return h }
        /^[ \t]*\[/ {
            if (cur == sec && !done) { print key " = " val; done = 1 }
            cur = header($0); print; next
        }
        cur == sec && !done && $0 ~ ("^[ \t]*" key "[ \t]*=") { print key " = " val; done = 1; next }
        { print }
        END {
            if (!done) {
                if (cur != sec) print "\n[" sec "]"
                print key " = " val
            }
        }' "$file" >"$tmp"
    cat "$tmp" >"$file"
    rm -f "$tmp"
}

# toml_get FILE SECTION KEY: the value of KEY in [SECTION], without surrounding quotes.
toml_get() {
    awk -v sec="$2" -v key="$3" '
        /^[ \t]*\[/ { h = $0; sub(/^[ \t]*\[/, "", h); sub(/\].*$/, "", h); cur = h; next }
        cur == sec && $0 ~ ("^[ \t]*" key "[ \t]*=") {
            v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]+#.*$/, "", v); gsub(/^"|"$/, "", v)
            print v; exit
        }' "$1"
}

# toml_section_lines FILE SECTION: the `key = value` lines of [SECTION].
toml_section_lines() {
    awk -v sec="$2" '
        /^[ \t]*\[/ { h = $0; sub(/^[ \t]*\[/, "", h); sub(/\].*$/, "", h); cur = h; next }
        cur == sec && /^[ \t]*[A-Za-z0-9_-]+[ \t]*=/ { print }' "$1"
}

# destdir_env FILE: sets DEST_ENV to the variables that point the paths of configuration FILE
# (data_dir, an absolute tls.cert / tls.key) into $DESTDIR, for running the binary on it here.
destdir_env() {
    local cert key
    DEST_ENV=(BIOGESTOR_STORAGE__DATA_DIR="$DESTDIR$STATE_DIR")
    cert=$(toml_get "$1" tls cert)
    key=$(toml_get "$1" tls key)
    case $cert in /*) DEST_ENV+=(BIOGESTOR_TLS__CERT="$DESTDIR$cert") ;; esac
    case $key in /*) DEST_ENV+=(BIOGESTOR_TLS__KEY="$DESTDIR$key") ;; esac
}

# random_token N: N random characters [A-Za-z0-9] from /dev/urandom.
random_token() {
    local n=$1 s=""
    while [ ${#s} -lt "$n" ]; do
        s+=$(head -c 192 /dev/urandom | base64 -w0 | tr -d '/+=')
    done
    echo "${s:0:$n}"
}

# --- uninstall -----------------------------------------------------------------------------

if [ "$MODE" = uninstall ]; then
    if have_systemd && systemctl list-unit-files biogestor.service >/dev/null 2>&1; then
        systemctl disable --now biogestor.service || true
    elif [ -n "$DESTDIR" ]; then
        act systemctl disable --now biogestor.service
    fi
    rm -f "$DESTDIR$UNIT_PATH"
    if have_systemd; then systemctl daemon-reload; elif [ -n "$DESTDIR" ]; then act systemctl daemon-reload; fi
    rm -f "$DESTDIR$BIN_PATH"
    say "removed $BIN_PATH and $UNIT_PATH"
    if [ -n "$DESTDIR" ]; then
        act userdel "$SVC_USER"
    elif getent passwd "$SVC_USER" >/dev/null; then
        userdel "$SVC_USER"
        say "removed user $SVC_USER"
    fi
    if [ "$PURGE" = 1 ]; then
        rm -rf "$DESTDIR$ETC_DIR" "$DESTDIR$STATE_DIR"
        say "purged $ETC_DIR and $STATE_DIR"
    else
        say "kept $ETC_DIR (configuration, secrets) and $STATE_DIR (data); --uninstall --purge deletes them"
    fi
    exit 0
fi

# --- install -------------------------------------------------------------------------------

[ -f "$CONFIG_SRC" ] || die "configuration template $CONFIG_SRC not found"
[ -f "$UNIT_SRC" ] || die "unit file $UNIT_SRC not found"

if [ -z "${BIN:-}" ]; then
    case $(uname -m) in
        aarch64|arm64) BIN=$TD/aarch64-unknown-linux-musl/pi/biogestor ;;
        armv7l|armv8l) BIN=$TD/armv7-unknown-linux-gnueabihf/pi/biogestor ;;
        *) BIN=$ROOT/target/release/biogestor ;;
    esac
    [ -f "$BIN" ] || BIN=$ROOT/target/release/biogestor
    say "BIN not set, using $BIN"
else
    say "using BIN=$BIN"
fi
[ -f "$BIN" ] || die "binary $BIN not found (build it, or set BIN=/path/to/biogestor)"
read -ra RUN <<<"${RUNNER:-}"
VERSION=$("${RUN[@]}" "$BIN" --version 2>&1) \
    || die "$BIN does not run on this machine ($(uname -m)): $VERSION (for another architecture set RUNNER, e.g. RUNNER=qemu-aarch64)"
say "binary: $VERSION"

# Upgrade: the new binary must accept the existing configuration before anything is replaced.
if [ -e "$DESTDIR$CONF_PATH" ]; then
    destdir_env "$DESTDIR$CONF_PATH"
    out=$(env "${DEST_ENV[@]}" "${RUN[@]}" "$BIN" check-config --config "$DESTDIR$CONF_PATH" 2>&1) \
        || die "$BIN rejects the existing $CONF_PATH, nothing was changed: $out"
fi

# Service user.
if [ -n "$DESTDIR" ]; then
    act useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin "$SVC_USER"
elif ! getent passwd "$SVC_USER" >/dev/null; then
    useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home \
        --shell "$(command -v nologin || echo /usr/sbin/nologin)" --comment "Biogestor appliance" "$SVC_USER"
    say "created system user $SVC_USER"
fi

# Directories. The state directory is also managed by systemd (StateDirectory=).
mkdir -p "$DESTDIR/usr/local/bin" "$DESTDIR/etc/systemd/system" "$DESTDIR$ETC_DIR" "$DESTDIR$STATE_DIR"
chmod 0755 "$DESTDIR$ETC_DIR"
chmod 0750 "$DESTDIR$STATE_DIR"
# Recursive: after an --uninstall and a new install the user may have a new id, and systemd
# only fixes ownership itself when the top directory does not match.
act chown -R "$SVC_USER:$SVC_USER" "$STATE_DIR"

# Binary (written beside the old one and renamed: safe while the service runs).
BIN_CHANGED=1
if [ -f "$DESTDIR$BIN_PATH" ] && cmp -s "$BIN" "$DESTDIR$BIN_PATH"; then BIN_CHANGED=0; fi
if [ "$BIN_CHANGED" = 1 ]; then
    install -m 0755 "$BIN" "$DESTDIR$BIN_PATH.new"
    mv -f "$DESTDIR$BIN_PATH.new" "$DESTDIR$BIN_PATH"
    say "installed $BIN_PATH"
else
    say "$BIN_PATH is already this binary"
fi

# Configuration: written once, never overwritten.
CONF=$DESTDIR$CONF_PATH
if [ -e "$CONF" ]; then
    say "keeping existing $CONF_PATH"
else
    tmpconf=$(umask 077 && mktemp "$DESTDIR$ETC_DIR/.config.toml.XXXXXX")
    cat "$CONFIG_SRC" >"$tmpconf"
    toml_set "$tmpconf" storage data_dir "\"$STATE_DIR\""
    toml_set "$tmpconf" mqtt allow_anonymous false
    toml_set "$tmpconf" mqtt.users "$SENSOR_USER" "\"$(random_token 24)\""
    sed -i -e 's/^# Change this password before connecting real sensors\.$/# Random password generated for this unit at installation./' \
        -e '/^# This published example is never accepted/,/mqtt-passwords\.toml\.$/d' "$tmpconf"
    toml_set "$tmpconf" auth jwt_secret "\"$(random_token 48)\""
    toml_set "$tmpconf" auth metrics_token "\"$(random_token 32)\""
    if [ "$TLS" = 1 ]; then
        toml_set "$tmpconf" http tls_bind "\"$HTTPS_BIND\""
        toml_set "$tmpconf" mqtt tls_bind "\"$MQTTS_BIND\""
        toml_set "$tmpconf" tls cert "\"$TLS_DIR/cert.pem\""
        toml_set "$tmpconf" tls key "\"$TLS_DIR/key.pem\""
    fi
    if grep -q "$PLACEHOLDER" "$tmpconf"; then
        rm -f "$tmpconf"
        die "the template still contains the placeholder password '$PLACEHOLDER' after substitution"
    fi
    chmod 0640 "$tmpconf"
    mv "$tmpconf" "$CONF"
    say "wrote $CONF_PATH with a new random sensor password, jwt_secret and metrics_token"
fi
# Ownership is (re)applied every time: after an uninstall the group may have a new id.
chmod 0640 "$CONF"
if [ -n "$DESTDIR" ]; then
    act chown "root:$SVC_USER" "$CONF_PATH"
else
    chown "root:$SVC_USER" "$CONF"
fi

# TLS certificate: created once when the configuration uses the one in $TLS_DIR, never replaced.
FINGERPRINT=
if [ "$(toml_get "$CONF" tls cert)" = "$TLS_DIR/cert.pem" ]; then
    mkdir -p "$DESTDIR$TLS_DIR"
    chmod 0750 "$DESTDIR$TLS_DIR"
    if [ -e "$DESTDIR$TLS_DIR/key.pem" ] || [ -e "$DESTDIR$TLS_DIR/cert.pem" ]; then
        say "keeping the existing TLS certificate in $TLS_DIR"
    else
        hosts=()
        if [ -z "$DESTDIR" ]; then
            for ip in $(hostname -I 2>/dev/null || true); do hosts+=(--host "$ip"); done
        fi
        out=$("${RUN[@]}" "$DESTDIR$BIN_PATH" tls-cert --out-dir "$DESTDIR$TLS_DIR" "${hosts[@]}" 2>&1) \
            || die "creating the TLS certificate failed: $out"
        say "created a self-signed TLS certificate for this unit in $TLS_DIR"
        while IFS= read -r line; do say "  $line"; done <<<"$out"
    fi
    FINGERPRINT=$("${RUN[@]}" "$DESTDIR$BIN_PATH" tls-fingerprint --cert "$DESTDIR$TLS_DIR/cert.pem" 2>&1) \
        || die "cannot read the TLS certificate $TLS_DIR/cert.pem: $FINGERPRINT"
    # The service reads the key; nobody else may.
    chmod 0600 "$DESTDIR$TLS_DIR/key.pem"
    chmod 0644 "$DESTDIR$TLS_DIR/cert.pem"
    if [ -n "$DESTDIR" ]; then
        act chown "root:$SVC_USER" "$TLS_DIR"
        act chown "$SVC_USER:$SVC_USER" "$TLS_DIR/key.pem"
    else
        chown "root:$SVC_USER" "$TLS_DIR"
        chown "$SVC_USER:$SVC_USER" "$TLS_DIR/key.pem"
    fi
fi

# Validate the configuration with the installed binary.
if [ -n "$DESTDIR" ]; then
    destdir_env "$CONF"
    out=$(env "${DEST_ENV[@]}" "${RUN[@]}" "$DESTDIR$BIN_PATH" check-config --config "$CONF" 2>&1) \
        || die "check-config rejected $CONF: $out"
else
    # As the service user: also proves it can read the file.
    out=$(runuser -u "$SVC_USER" -- "${RUN[@]}" "$BIN_PATH" check-config --config "$CONF_PATH" 2>&1) \
        || die "check-config rejected $CONF_PATH: $out"
fi
say "$out"

# Unit.
install -m 0644 "$UNIT_SRC" "$DESTDIR$UNIT_PATH.new"
mv -f "$DESTDIR$UNIT_PATH.new" "$DESTDIR$UNIT_PATH"
say "installed $UNIT_PATH"

if [ -n "$DESTDIR" ]; then
    act systemctl daemon-reload
    act systemctl enable --now biogestor.service
elif have_systemd; then
    was_active=0
    systemctl is-active --quiet biogestor.service && was_active=1
    systemctl daemon-reload
    systemctl enable --now biogestor.service
    if [ "$was_active" = 1 ] && [ "$BIN_CHANGED" = 1 ]; then
        systemctl restart biogestor.service
        say "restarted biogestor with the new binary"
    fi
    systemctl is-active --quiet biogestor.service \
        || say "WARNING: the service is not active; see: journalctl -u biogestor -n 50"
else
    say "WARNING: systemd is not running here; start it with: systemctl daemon-reload && systemctl enable --now biogestor"
fi

# --- how to reach it -----------------------------------------------------------------------

http_bind=$(toml_get "$CONF" http bind)
mqtt_bind=$(toml_get "$CONF" mqtt bind)
https_bind=$(toml_get "$CONF" http tls_bind)
mqtts_bind=$(toml_get "$CONF" mqtt tls_bind)
host_ip=$(hostname -I 2>/dev/null | awk '{print $1}' || true)
host_ip=${host_ip:-<host-ip>}
cat <<EOF

Biogestor is installed.
  Web interface:   http://$host_ip:${http_bind##*:}/
  First start:     the service writes a one-time setup code to create the first administrator:
                     sudo cat $STATE_DIR/setup-code
  MQTT broker:     $host_ip port ${mqtt_bind##*:} (MQTT 3.1.1), topics: $(toml_get "$CONF" mqtt topics)
  Sensor credentials (from $CONF_PATH, [mqtt.users]):
$(toml_section_lines "$CONF" mqtt.users | sed 's/^[ \t]*/                     /')
  Configuration:   $CONF_PATH (then: sudo systemctl restart biogestor)
  Logs:            journalctl -u biogestor -f
EOF
if [ -n "$https_bind" ] || [ -n "$mqtts_bind" ]; then
    cat <<EOF
  HTTPS:           ${https_bind:+https://$host_ip:${https_bind##*:}/ (self-signed certificate: the browser warns the first time)}
  MQTT over TLS:   ${mqtts_bind:+$host_ip port ${mqtts_bind##*:}}
  Certificate:     $(toml_get "$CONF" tls cert), pinned by sensors (README, "TLS"):
                     ${FINGERPRINT:-see: biogestor tls-fingerprint --config $CONF_PATH}
EOF
fi
