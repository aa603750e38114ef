#!/usr/bin/env python3
"""Lucent's picture parameterisation (`param.image(w, h, fft=True, decorrelate=True)`: a scaled
half spectrum, `irfftn(norm="ortho") / 4`, Lucid's colour decorrelation, a sigmoid) on seeded
spectra, and the gradient of a fixed linear score through it by autograd, for
tests/feature_visualization.rs. Also NumPy's plain `irfft2` for the bare transform.

    /tmp/fl/bin/pip install torch numpy
    /tmp/fl/bin/pip install --no-deps torch-lucent==0.1.8
    /tmp/fl/bin/python tools/visualization/lucent_fixtures.py

Layout written (firelight's `Picture` parameters): per channel, the real parts `[h, w // 2 + 1]`
then the imaginary parts. Lucent keeps one extra column for odd widths, which `irfftn` drops; it is
left out here.
"""
import json
import os

import numpy as np
import torch
from lucent.optvis.param.color import to_valid_rgb
from lucent.optvis.param.spatial import fft_image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures",
                   "visualization")
os.makedirs(OUT, exist_ok=True)
manifest = {}

for side in (8, 7):
    torch.manual_seed(side)
    params, image_f = fft_image((1, 3, side, side), sd=0.5)
    spectrum = params[0]
    picture = to_valid_rgb(image_f, decorrelate=True)
    image = picture()
    weights = torch.from_numpy(np.random.default_rng(side).normal(size=image.shape).astype(np.float32))
    (image * weights).sum().backward()
    k = side // 2 + 1
    ours = lambda t: np.concatenate(
        [t[0, c, :, :k, part].reshape(-1) for c in range(3) for part in (0, 1)]).astype(np.float32)
    np.save(os.path.join(OUT, f"fft_params_{side}.npy"), ours(spectrum.detach().numpy()))
    np.save(os.path.join(OUT, f"fft_image_{side}.npy"), image.detach().numpy().astype(np.float32))
    np.save(os.path.join(OUT, f"fft_weights_{side}.npy"), weights.numpy())
    np.save(os.path.join(OUT, f"fft_grad_{side}.npy"), ours(spectrum.grad.numpy()))
    manifest[f"fft_{side}"] = {"side": side, "decay_power": 1, "decorrelate": True}

rng = np.random.default_rng(0)
for h, w in ((6, 8), (5, 7)):
    k = w // 2 + 1
    re, im = rng.normal(size=(h, k)), rng.normal(size=(h, k))
    np.save(os.path.join(OUT, f"irfft2_in_{h}x{w}.npy"), np.stack([re, im]).astype(np.float32))
    np.save(os.path.join(OUT, f"irfft2_out_{h}x{w}.npy"),
            np.fft.irfft2(re + 1j * im, s=(h, w)).astype(np.float32))

manifest["versions"] = {"torch": torch.__version__, "numpy": np.__version__, "lucent": "0.1.8"}
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
print(manifest)
