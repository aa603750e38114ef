// The page in a real browser: headless Chromium loads it from `firelight web`, a script drops the
// bundled photo on it, waits for the map, and checks that the map appeared over the photo and that
// the top class is the native one (the committed fixture the wasm tests use). Then bad input: a
// file that is not an image, a file that is not an ONNX model, a model that asks for more memory
// than the page's budget: each a message on the page, and the page still explains afterwards.
// The screenshot goes to docs/images/web-page.png. Playwright starts Chromium with a new, empty
// profile of its own.
//
//   web/build.sh --dev && (cd web && npm ci) && node web/tests/page.mjs [path/to/firelight]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const firelight = process.argv[2] ?? process.env.FIRELIGHT_BIN ?? join(root, 'target/debug/firelight');
const chromePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const fixture = JSON.parse(readFileSync(join(root, 'crates/firelight-web/tests/fixtures/chelsea_native.json'), 'utf8'));
const nativeTop = fixture.top5[0][0];

function check(condition, message) {
  if (!condition) throw new Error(`FAILED: ${message}`);
  console.log(`ok: ${message}`);
}

function serve() {
  const server = spawn(firelight, ['web', '--port', '0', '--dir', join(root, 'web/dist')], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let seen = '';
    server.on('error', reject);
    server.on('exit', (code) => reject(new Error(`firelight web exited with ${code}`)));
    server.stdout.on('data', (chunk) => {
      seen += chunk;
      const url = seen.match(/at (http:\/\/\S+\/)/);
      if (url) resolve({ server, url: url[1] });
    });
  });
}

async function drop(page, name, bytes, type) {
  await page.evaluate(({ name, b64, type }) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([data], name, { type }));
    const zone = document.getElementById('drop');
    for (const kind of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }));
    }
  }, { name, b64: Buffer.from(bytes).toString('base64'), type });
}

const state = (page, wanted, timeout = 120_000) =>
  page.waitForFunction((w) => w.includes(document.body.dataset.state), wanted, { timeout });

const { server, url } = await serve();
// Whatever happens below, the server goes with this script (a launch failure included).
process.on('exit', () => server.kill());
const browser = await chromium.launch({
  executablePath: chromePath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failed = false;
const logs = [];
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(url);
  await state(page, ['ready']);
  check(true, `the page loaded the bundled model from ${url}`);

  await drop(page, 'chelsea.png', readFileSync(join(root, 'models/images/chelsea.png')), 'image/png');
  await state(page, ['done', 'error']);
  const error = await page.locator('#error').isVisible() ? await page.locator('#error').textContent() : null;
  check(error === null, `the dropped photo was explained (${error ?? 'no error'})`);
  await page.screenshot({ path: join(root, 'docs/images/web-page.png'), fullPage: true });
  const top = Number(await page.locator('#top5 li').first().getAttribute('data-class'));
  check(top === nativeTop, `the top class in the browser (${top}) is the native one (${nativeTop})`);
  const picture = await page.locator('#picture').evaluate(async (img) => {
    await img.decode();
    const canvas = new OffscreenCanvas(img.naturalWidth, img.naturalHeight);
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0);
    const { data } = context.getImageData(0, 0, img.naturalWidth, img.naturalHeight);
    let warm = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i] > data[i + 1] + 60 && data[i] > data[i + 2] + 60) warm += 1;
    return { width: img.naturalWidth, height: img.naturalHeight, warm: warm / (data.length / 4) };
  });
  check(picture.width === 224 && picture.height === 224, `the map is drawn over the 224x224 crop (${picture.width}x${picture.height})`);
  check(picture.warm > 0.05, `the map lights up part of the photo (${(100 * picture.warm).toFixed(1)}% warm pixels)`);
  const caption = await page.locator('#caption').textContent();
  check(caption.startsWith('gradcam for'), `the caption says what was drawn: ${caption}`);
  check(await page.locator('#download-npy').getAttribute('href') !== null, 'the numbers can be downloaded as .npy');

  await drop(page, 'notes.txt', Buffer.from('not a photo at all'), 'text/plain');
  await state(page, ['error']);
  const notImage = await page.locator('#error').textContent();
  check(/not an image/.test(notImage), `a file that is not an image gets a message: ${notImage}`);

  await page.locator('#model-file').setInputFiles({ name: 'photo.onnx', mimeType: 'application/octet-stream', buffer: readFileSync(join(root, 'models/images/chelsea.png')) });
  await state(page, ['error']);
  const notOnnx = await page.locator('#error').textContent();
  check(/photo\.onnx/.test(notOnnx), `a file that is not an ONNX model gets a message: ${notOnnx}`);

  await page.locator('#model-file').setInputFiles(join(root, 'tests/fixtures/onnx_budget/constant_of_shape.onnx'));
  await state(page, ['error']);
  const tooLarge = await page.locator('#error').textContent();
  check(/budget|memory/i.test(tooLarge), `a model asking for more memory than the page has gets a message: ${tooLarge}`);

  await page.locator('#method').selectOption('occlusion');
  await page.locator('#window').fill('112'); // 3x3 windows at stride 56: seconds, not a minute
  await page.locator('#explain').click();
  await state(page, ['done', 'error']);
  const after = await page.locator('#caption').textContent();
  check(after.startsWith('occlusion for'), `the page still explains with the bundled model afterwards: ${after}`);
  check(!logs.some((l) => l.startsWith('pageerror')), `no uncaught error on the page (${logs.length} console lines)`);
} catch (error) {
  failed = true;
  console.error(error.message);
  console.error(`the page's console:\n${logs.join('\n')}`);
} finally {
  await browser.close();
  server.kill();
}
process.exit(failed ? 1 : 0);
