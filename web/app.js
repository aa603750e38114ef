// The page: a photo in, the prediction and the explanation out. The work happens in worker.js.
const $ = (id) => document.getElementById(id);
const MAX_MODEL_BYTES = 1024 * 1024 * 1024; // the wasm side holds a model to a 1.5 GiB budget

let worker = null;
let nextId = 1;
const pending = new Map();
let info = null;
let photo = null; // {bytes, name}
let busy = false;

function setState(state) { document.body.dataset.state = state; }

function status(text) { $('status').textContent = text; }

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
  setState('error');
}

function clearError() { $('error').hidden = true; }

function startWorker() {
  worker = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
  worker.onmessage = (event) => {
    const message = event.data;
    const request = pending.get(message.id);
    if (!request) return;
    if (message.progress) { request.onProgress?.(...message.progress); return; }
    pending.delete(message.id);
    if (message.ok) request.resolve(message);
    else request.reject(Object.assign(new Error(message.error), { fatal: message.fatal }));
  };
  worker.onerror = (event) => {
    event.preventDefault();
    const error = Object.assign(new Error(`the explainer stopped: ${event.message || 'it crashed'}`), { fatal: true });
    for (const request of pending.values()) request.reject(error);
    pending.clear();
  };
}

function call(kind, args = {}, onProgress) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject, onProgress });
    worker.postMessage({ id, kind, ...args });
  });
}

// A worker whose wasm instance trapped is replaced, and the model loaded again.
async function recover(error) {
  showError(error.message);
  if (!error.fatal) return;
  worker.terminate();
  startWorker();
  status('The explainer stopped; reloading the bundled model…');
  try {
    populate((await call('load-bundled')).info);
    status('Reloaded the bundled model after the error above.');
  } catch (again) {
    showError(`${error.message}\nReloading failed too: ${again.message}`);
  }
}

function option(value, text) {
  const element = document.createElement('option');
  element.value = value;
  element.textContent = text;
  return element;
}

function populate(next) {
  info = next;
  $('model-name').textContent = `${info.name}: ${info.labels.length || 'unnamed'} classes, ${info.crop}×${info.crop} input, ${info.layers.length} layers`;
  const method = $('method');
  const chosen = method.value || 'gradcam';
  method.replaceChildren();
  const families = [...new Set(info.methods.map((m) => m.family))];
  for (const family of families) {
    const group = document.createElement('optgroup');
    group.label = family;
    for (const m of info.methods.filter((m) => m.family === family)) group.append(option(m.name, m.name));
    method.append(group);
  }
  method.value = info.methods.some((m) => m.name === chosen) ? chosen : 'gradcam';
  const layer = $('layer');
  layer.replaceChildren(...info.layers.map((l) => {
    const shape = l.shape ? ` [${l.shape.map((d) => d ?? '?').join(', ')}]` : '';
    return option(l.name, `${l.name} (${l.kind})${shape}`);
  }));
  if (info.suggested) layer.value = info.suggested;
  const target = $('target');
  target.replaceChildren(option('', 'the top class'), ...info.labels.map((label, i) => option(String(i), `${i}: ${label}`)));
  methodChanged();
  $('explain').disabled = false;
}

function currentMethod() { return info?.methods.find((m) => m.name === $('method').value); }

function methodChanged() {
  const m = currentMethod();
  if (!m) return;
  const has = (name) => m.options.some(([key]) => key === name);
  $('method-about').textContent = `${m.about}. Matches ${m.reference}.`;
  $('layer-row').hidden = !m.needs_layer;
  $('steps-row').hidden = !has('n_steps');
  $('window-row').hidden = !has('window');
}

function options() {
  const m = currentMethod();
  const has = (name) => m.options.some(([key]) => key === name);
  const chosen = {};
  if (m.needs_layer) chosen.layer = $('layer').value;
  if (has('n_steps')) chosen.n_steps = Number($('n-steps').value);
  if (has('window')) {
    chosen.window = Number($('window').value);
    chosen.stride = Math.max(1, Math.floor(chosen.window / 2));
  }
  if ($('target').value !== '') chosen.target = Number($('target').value);
  return chosen;
}

function renderTop5(top) {
  $('top5').replaceChildren(...top.map((c) => {
    const item = document.createElement('li');
    item.dataset.class = c.class;
    item.textContent = `${c.label} (class ${c.class}): ${(100 * c.probability).toFixed(2)}%`;
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${Math.max(2, 160 * c.probability)}px`;
    item.append(bar);
    return item;
  }));
}

let pictureUrl = null;
let npyUrl = null;

function renderResult(result) {
  for (const url of [pictureUrl, npyUrl]) if (url) URL.revokeObjectURL(url);
  npyUrl = URL.createObjectURL(new Blob([result.npy], { type: 'application/octet-stream' }));
  const stem = `${photo.name.replace(/\.[^.]*$/, '')}_${result.method}`;
  $('download-npy').href = npyUrl;
  $('download-npy').download = `${stem}.npy`;
  const what = `${result.method} for “${result.target.label}” (class ${result.target.class}, ${(100 * result.target.probability).toFixed(1)}%)`;
  const where = result.layer ? ` at ${result.layer}` : '';
  if (result.picture.length) {
    pictureUrl = URL.createObjectURL(new Blob([result.picture], { type: 'image/png' }));
    $('picture').src = pictureUrl;
    $('picture').hidden = false;
    $('download-png').href = pictureUrl;
    $('download-png').download = `${stem}.png`;
    $('download-png').hidden = false;
  } else {
    $('picture').hidden = true;
    $('download-png').hidden = true;
  }
  const shape = result.picture.length ? '' : ` (a layer attribution of shape [${result.shape.join(', ')}]: download the numbers)`;
  $('caption').textContent = `${what}${where}, in ${result.seconds.toFixed(2)} s${shape}`;
  $('result').hidden = false;
}

// Explains `candidate` (a newly dropped or picked photo) or the current photo. A new photo
// becomes the current one only once the model could read it: a file that is not an image gets
// a message and the previous photo stays.
async function run(candidate = null) {
  const subject = candidate ?? photo;
  if (!subject || !info || busy) return;
  busy = true;
  $('explain').disabled = true;
  clearError();
  setState('busy');
  const progress = $('progress');
  try {
    status('Predicting…');
    const top = (await call('predict', { photo: subject.bytes, name: subject.name })).top;
    if (candidate) showPhoto(candidate);
    renderTop5(top);
    const m = currentMethod();
    const started = performance.now();
    progress.removeAttribute('value');
    progress.hidden = false;
    const tick = setInterval(() => status(`Explaining with ${m.name}… ${((performance.now() - started) / 1000).toFixed(0)} s`), 500);
    status(`Explaining with ${m.name}…`);
    try {
      const request = { photo: subject.bytes, name: subject.name, method: m.name, options: options() };
      const result = await call('explain', request, (done, total) => {
        progress.max = total;
        progress.value = done;
      });
      renderResult(result);
    } finally {
      clearInterval(tick);
      progress.hidden = true;
    }
    status(`Done: ${m.name}.`);
    setState('done');
  } catch (error) {
    status('Failed.');
    await recover(error);
  } finally {
    busy = false;
    $('explain').disabled = !info;
  }
}

function showPhoto(candidate) {
  photo = candidate;
  const url = URL.createObjectURL(new Blob([candidate.bytes]));
  const img = $('photo');
  img.onload = () => URL.revokeObjectURL(url);
  img.onerror = () => URL.revokeObjectURL(url);
  img.src = url;
  img.hidden = false;
  img.alt = candidate.name;
}

async function setPhoto(bytes, name) {
  await run({ bytes, name });
}

async function readFile(file) { return new Uint8Array(await file.arrayBuffer()); }

async function photoFile(file) {
  if (!file) return;
  await setPhoto(await readFile(file), file.name);
}

async function modelFile() {
  const file = $('model-file').files[0];
  if (!file) return;
  clearError();
  if (file.size > MAX_MODEL_BYTES) {
    showError(`${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MB: too large for this page (at most ${MAX_MODEL_BYTES / 2 ** 20} MB; a browser tab has a few GB for the model and its activations).`);
    return;
  }
  const labelsFile = $('labels-file').files[0];
  status(`Loading ${file.name}…`);
  setState('busy');
  try {
    const labels = labelsFile ? await labelsFile.text() : null;
    populate((await call('load', { name: file.name, model: await readFile(file), labels })).info);
    status(`Loaded ${file.name}.`);
    setState('ready');
    if (photo) await run();
  } catch (error) {
    status(`Could not load ${file.name}; the previous model stays.`);
    await recover(error);
  }
}

function wireDrop() {
  const drop = $('drop');
  // A file dropped anywhere else would make the browser navigate to it.
  for (const type of ['dragover', 'drop']) document.addEventListener(type, (e) => e.preventDefault());
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    photoFile(e.dataTransfer.files[0]);
  });
}

async function main() {
  wireDrop();
  $('photo-file').addEventListener('change', () => photoFile($('photo-file').files[0]));
  $('use-cat').addEventListener('click', async () => {
    const response = await fetch('model/chelsea.png');
    await setPhoto(new Uint8Array(await response.arrayBuffer()), 'chelsea.png');
  });
  $('method').addEventListener('change', methodChanged);
  $('explain').addEventListener('click', () => run());
  $('model-file').addEventListener('change', modelFile);
  if ('serviceWorker' in navigator) navigator.serviceWorker.register('sw.js').catch(() => {});
  startWorker();
  setState('loading');
  status('Loading the bundled EfficientNet-Lite0…');
  try {
    populate((await call('load-bundled')).info);
    status('Ready: drop a photo, or use the bundled cat.');
    setState('ready');
  } catch (error) {
    status('Could not load the bundled model.');
    showError(error.message);
  }
}

main();
