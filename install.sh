#!/usr/bin/env bash
# Builds ktasks from this checkout and installs it. Safe to run twice: the binary is replaced, an
# existing config file is never overwritten.
#
#   ./install.sh              as root: /usr/local/bin/ktasks and /etc/ktasks/config.toml
#                             otherwise: ~/.local/bin/ktasks and ~/.config/ktasks/config.toml
#   PREFIX=/opt/kt ./install.sh   /opt/kt/bin/ktasks and /opt/kt/etc/ktasks/config.toml
#   ./install.sh --systemd    (root) also a `ktasks` system user, /var/lib/ktasks, and an enabled
#                             ktasks.service
#   ./install.sh --print-unit print the ktasks.service unit it would write, and do nothing else
set -euo pipefail

systemd=false
print_unit=false
for arg in "$@"; do
  case "$arg" in
    --systemd) systemd=true ;;
    --print-unit) print_unit=true ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

here=$(cd "$(dirname "$0")" && pwd)
root=false
[ "$(id -u)" -eq 0 ] && root=true

if [ -n "${PREFIX:-}" ]; then
  bin_dir="$PREFIX/bin"; config_dir="$PREFIX/etc/ktasks"; data_dir="$PREFIX/var/lib/ktasks"
elif $root; then
  bin_dir=/usr/local/bin; config_dir=/etc/ktasks; data_dir=/var/lib/ktasks
else
  bin_dir="$HOME/.local/bin"; config_dir="${XDG_CONFIG_HOME:-$HOME/.config}/ktasks"
  data_dir="${XDG_DATA_HOME:-$HOME/.local/share}/ktasks"
fi
config="$config_dir/config.toml"

# The service unit. Sandboxed as tightly as a network server that writes one directory allows:
# no capabilities, no devices, no kernel tunables, modules, logs or clock, no namespaces or
# set-uid files, only IP and Unix sockets, the @system-service syscall set, no writable-and-
# executable memory, other processes invisible; files it creates are 0600.
unit() {
  cat <<UNIT
[Unit]
Description=ktasks: self-hosted Krokanti Tasks API server
After=network.target

[Service]
User=ktasks
Group=ktasks
ExecStart=$bin_dir/ktasks --config $config serve
WorkingDirectory=$data_dir
Restart=on-failure
# ktasks finishes in-flight requests within shutdown_grace_secs on SIGTERM.
TimeoutStopSec=30
UMask=0077
NoNewPrivileges=true
CapabilityBoundingSet=
PrivateDevices=yes
PrivateTmp=true
ProtectSystem=strict
ProtectHome=true
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
SystemCallFilter=@system-service
SystemCallArchitectures=native
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
ProtectKernelLogs=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
# server.max_connections (1024) plus the database, its journal and some headroom.
LimitNOFILE=65536
ReadWritePaths=$data_dir

[Install]
WantedBy=multi-user.target
UNIT
}
if $print_unit; then unit; exit 0; fi

if $systemd && ! $root; then
  echo "install.sh: --systemd needs root (it writes /etc/systemd/system)" >&2; exit 1
fi
command -v cargo >/dev/null || { echo "install.sh: cargo is needed; install Rust from rustup.rs" >&2; exit 1; }

echo "==> building the release binary"
(cd "$here" && cargo build --release --locked)

echo "==> installing $bin_dir/ktasks"
mkdir -p "$bin_dir"
install -m 0755 "$here/target/release/ktasks" "$bin_dir/ktasks.new"
mv -f "$bin_dir/ktasks.new" "$bin_dir/ktasks"

mkdir -p "$config_dir" "$data_dir"
if [ -e "$config" ]; then
  echo "==> keeping the existing $config"
else
  echo "==> writing $config (database in $data_dir)"
  sed "s|^path = \"ktasks.db\"|path = \"$data_dir/ktasks.db\"|" "$here/config.example.toml" > "$config"
fi

if $systemd; then
  if ! id ktasks >/dev/null 2>&1; then
    useradd --system --home-dir "$data_dir" --shell /usr/sbin/nologin ktasks
  fi
  chown ktasks:ktasks "$data_dir"
  chmod 0750 "$data_dir"
  unit > /etc/systemd/system/ktasks.service
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now ktasks.service
    echo "==> ktasks.service enabled and started"
  else
    echo "==> wrote /etc/systemd/system/ktasks.service (systemd is not running here; enable it later)"
  fi
fi

run="$bin_dir/ktasks --config $config"
if $systemd; then run="sudo -u ktasks $run"; fi
cat <<NEXT

ktasks is installed. Next steps:
  1. Create a user:   $run user create --email you@example.com --name "Your Name"
  2. Mint a token:    $run token create --user you@example.com --name "my script"
NEXT
if $systemd; then
  echo "  3. The server runs as ktasks.service:  systemctl status ktasks"
else
  echo "  3. Start it:        $run serve"
fi
echo "  Then: curl -H \"Authorization: Bearer <token>\" http://127.0.0.1:8080/api/spaces"
case ":$PATH:" in *":$bin_dir:"*) ;; *) echo "  (add $bin_dir to your PATH)";; esac
