// The page's work in wasm under Node, beside the native `cargo bench -p firelight-web --bench web`:
// predict, Grad-CAM and IG-50 on the bundled EfficientNet-Lite0 and photo, median of REPS runs
// (default 3) after one warm-up, on one thread (wasm32 without threads).
//
//   cargo build --release --target wasm32-unknown-unknown -p firelight-web
//   wasm-bindgen --target nodejs --out-dir /tmp/firelight-web-node \
//       target/wasm32-unknown-unknown/release/firelight_web.wasm
//   node crates/firelight-web/benches/wasm.mjs /tmp/firelight-web-node
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = process.argv[2] ?? '/tmp/firelight-web-node';
const { Explainer } = createRequire(import.meta.url)(join(pkg, 'firelight_web.js'));
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const reps = Number(process.env.REPS ?? 3);
const dir = join(root, 'models/efficientnet_lite0');
const photo = readFileSync(join(root, 'models/images/chelsea.png'));

async function median(f) {
  await f();
  const times = [];
  for (let i = 0; i < reps; i += 1) {
    const started = performance.now();
    await f();
    times.push((performance.now() - started) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const explainer = await Explainer.load('EfficientNet-Lite0', readFileSync(join(dir, 'model.onnx')),
  readFileSync(join(dir, 'labels.json'), 'utf8'), readFileSync(join(dir, 'preprocess.json'), 'utf8'));
console.log(`wasm (Node ${process.version}), one thread: case, median seconds of ${reps}`);
console.log(`predict ${(await median(() => explainer.predict(photo, 'chelsea.png', 5))).toFixed(3)}`);
for (const [method, options] of [['gradcam', '{}'], ['integrated_gradients', '{"n_steps": 50}']]) {
  const t = await median(async () => (await explainer.explain(photo, 'chelsea.png', method, options, undefined)).free());
  console.log(`${method} ${t.toFixed(3)}`);
}
