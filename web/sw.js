// Offline once loaded: every file of the page, the wasm and the bundled model are cached on the
// first visit and served from the cache afterwards (network first, so a rebuilt page is picked up).
const CACHE = 'firelight-web-v1';
const FILES = [
  './', 'index.html', 'style.css', 'app.js', 'worker.js',
  'pkg/firelight_web.js', 'pkg/firelight_web_bg.wasm',
  'model/model.onnx', 'model/labels.json', 'model/preprocess.json', 'model/chelsea.png',
];

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  if (event.request.method !== 'GET' || new URL(event.request.url).origin !== location.origin) return;
  event.respondWith(fetch(event.request)
    .then((response) => {
      if (response.ok) {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(event.request, copy));
      }
      return response;
    })
    .catch(() => caches.match(event.request).then((hit) => hit ?? Response.error())));
});
