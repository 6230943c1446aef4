#!/usr/bin/env bash
# Installs what keel's build and tests need on a fresh Debian machine, and
# nothing that is already there. Safe to run repeatedly.
set -euo pipefail

need_apt=()
# Add Debian packages here as the test suites come to need them, e.g.
# `command -v etcdctl >/dev/null || need_apt+=(etcd-client)`.
# Real etcd 3.4 (server and etcdctl): the reference for keel-server's
# integration and differential tests (server/tests/support/).
command -v etcd >/dev/null || need_apt+=(etcd-server)
command -v etcdctl >/dev/null || need_apt+=(etcd-client)
# protoc for the `etcd-client` crate's build script (keel-server dev-dependency);
# keel's own protos use the vendored protoc from the protoc-bin-vendored crate.
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
# python3 and pip for etcd3gw, the etcd gateway client the HTTP/JSON gateway
# is tested with (server/tests/gateway.rs).
command -v python3 >/dev/null || need_apt+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
# curl for the HTTP/JSON gateway over https (server/tests/tls.rs).
command -v curl >/dev/null || need_apt+=(curl)
# A TrueType font for the plots keel-jepsen's report and keel-bench compare
# draw with plotters (their tests check the PNGs).
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)

if [ ${#need_apt[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}"
fi

# etcd3gw from PyPI (not packaged by Debian); --break-system-packages only
# where pip refuses user installs on an externally managed Python.
if ! python3 -c 'import etcd3gw' 2>/dev/null; then
  python3 -m pip install --user --quiet etcd3gw ||
    python3 -m pip install --user --quiet --break-system-packages etcd3gw
fi

if command -v rustup >/dev/null; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi
