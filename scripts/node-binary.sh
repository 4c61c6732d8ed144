#!/usr/bin/env bash
# Prints the path of a Node.js binary of one major version (22, 24, ...) for the tests that run on
# every supported line. It comes from the npm registry's node-linux-<arch> package, installed once
# into a cache directory (TPROXY_NODE_CACHE, default ~/.cache/tproxy): no other download.
set -euo pipefail
major=${1:?usage: node-binary.sh MAJOR}
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "node-binary: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
dir=${TPROXY_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tproxy}/node-$major
bin=$dir/node_modules/node-linux-$arch/bin/node
if [ ! -x "$bin" ]; then
  echo "node-binary: installing node-linux-$arch@$major from the npm registry into $dir" >&2
  npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "node-linux-$arch@$major" >&2
fi
echo "$bin"
