#!/usr/bin/env bash
# Builds the browser page into web/dist: the firelight-web crate compiled to WebAssembly, its
# JavaScript bindings, the page's files, and the bundled EfficientNet-Lite0 with the cat photo.
#
#   rustup target add wasm32-unknown-unknown
#   cargo install wasm-bindgen-cli --version 0.2.130   # must match the wasm-bindgen crate
#   web/build.sh           # release build (what to deploy)
#   web/build.sh --dev     # the test profile's build (faster to build, what CI checks)
#
# Then `firelight web` serves it, or copy web/dist to any static file host.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
case "${1:-}" in
    --dev) profile=dev ;;
    "") ;;
    *) echo "usage: web/build.sh [--dev]" >&2; exit 2 ;;
esac
if ! command -v wasm-bindgen >/dev/null; then
    echo "wasm-bindgen not found: cargo install wasm-bindgen-cli --version 0.2.130" >&2
    exit 1
fi

target_dir="${CARGO_TARGET_DIR:-target}"
if [ "$profile" = release ]; then
    cargo build --release --target wasm32-unknown-unknown -p firelight-web
    wasm="$target_dir/wasm32-unknown-unknown/release/firelight_web.wasm"
else
    cargo build --target wasm32-unknown-unknown -p firelight-web
    wasm="$target_dir/wasm32-unknown-unknown/debug/firelight_web.wasm"
fi

dist=web/dist
rm -rf "$dist.tmp"
mkdir -p "$dist.tmp/model"
wasm-bindgen --target web --no-typescript --out-dir "$dist.tmp/pkg" "$wasm"
cp web/index.html web/style.css web/app.js web/worker.js web/sw.js "$dist.tmp/"
cp models/efficientnet_lite0/model.onnx models/efficientnet_lite0/labels.json \
    models/efficientnet_lite0/preprocess.json models/images/chelsea.png "$dist.tmp/model/"
# Swap the finished folder in whole: a server never hands out half a build.
rm -rf "$dist"
mv "$dist.tmp" "$dist"
echo "built $dist ($profile): $(du -sh "$dist" | cut -f1); serve it with: firelight web"
