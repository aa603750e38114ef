// The explainer runs here, off the page's thread: a method runs to completion inside one wasm call,
// and the page stays responsive and shows progress meanwhile. Messages: {id, kind, ...args} in;
// {id, ok, ...} or {id, progress: [done, total]} out.
import init, { Explainer } from './pkg/firelight_web.js';

const ready = init();
let explainer = null;
// A Rust panic aborts the wasm instance; its hook writes the message to console.error first.
let lastPanic = null;
const consoleError = console.error.bind(console);
console.error = (...parts) => {
  lastPanic = parts.join(' ');
  consoleError(...parts);
};

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function fetchText(url) {
  const response = await fetch(url);
  return response.ok ? response.text() : undefined;
}

function describe() {
  return {
    name: explainer.name,
    crop: explainer.crop,
    labels: JSON.parse(explainer.labels()),
    layers: JSON.parse(explainer.layers()),
    suggested: explainer.suggestedLayer() ?? null,
    methods: JSON.parse(Explainer.methods()),
  };
}

async function load(name, model, labels, preprocess) {
  const next = await Explainer.load(name, model, labels, preprocess);
  if (explainer) explainer.free();
  explainer = next;
  return describe();
}

async function handle(kind, args, id) {
  switch (kind) {
    case 'load-bundled': {
      const [model, labels, preprocess] = await Promise.all([
        fetchBytes('model/model.onnx'), fetchText('model/labels.json'), fetchText('model/preprocess.json'),
      ]);
      return { info: await load('EfficientNet-Lite0 (bundled, ImageNet)', model, labels, preprocess) };
    }
    case 'load':
      return { info: await load(args.name, args.model, args.labels ?? undefined, undefined) };
    case 'predict':
      return { top: JSON.parse(await explainer.predict(args.photo, args.name, 5)) };
    case 'cropped':
      return { png: await explainer.croppedPng(args.photo, args.name) };
    case 'explain': {
      const started = performance.now();
      const progress = (done, total) => self.postMessage({ id, progress: [done, total] });
      const e = await explainer.explain(args.photo, args.name, args.method, JSON.stringify(args.options), progress);
      const result = {
        method: e.method, target: JSON.parse(e.target), layer: e.layer ?? null,
        shape: Array.from(e.shape), side: e.side, map: e.map, picture: e.picturePng, npy: e.npy(),
        seconds: (performance.now() - started) / 1000,
      };
      e.free();
      return result;
    }
    default:
      throw new Error(`unknown request ${kind}`);
  }
}

self.onmessage = async (event) => {
  const { id, kind, ...args } = event.data;
  try {
    await ready;
    if (!explainer && !kind.startsWith('load')) throw new Error('no model is loaded');
    self.postMessage({ id, ok: true, ...(await handle(kind, args, id)) });
  } catch (error) {
    // A trap (out of memory, a panic) leaves the wasm instance unusable: the page starts a new
    // worker. An Err from Rust arrives as an Error with firelight's message.
    const trapped = error instanceof WebAssembly.RuntimeError;
    let message = String(error?.message ?? error);
    if (trapped) {
      message = lastPanic ?? (/unreachable|out of bounds|memory/i.test(message)
        ? `the explainer ran out of memory (${message}); try a smaller model or fewer rows per batch`
        : message);
    }
    self.postMessage({ id, ok: false, error: message, fatal: trapped });
  }
};
