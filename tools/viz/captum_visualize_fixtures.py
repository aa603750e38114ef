#!/usr/bin/env python3
"""Parity fixtures for firelight-viz's Captum visualisation (crates/firelight-viz/src/visualize.rs).

Writes crates/firelight-viz/tests/fixtures/captum_visualize/:
  attr_<case>.npy                   random attributions [1, C, H, W], float32
  norm_<case>_<sign>_<perc>.npy     Captum's `_normalize_attr` of the channel sum, for every sign
                                    and outlier_perc 2 and 10
  colormaps.npy                     [maps, 11, 3]: matplotlib's `cmap(np.linspace(0, 1, 11))` RGB
                                    for the maps in manifest["colormaps"]
  photo.npy                         a small photo [H, W, 3] (uint8 values as float32)
  render_<method>_<sign>.npy        Captum's `visualize_image_attr(attr_0, photo, method, sign)`
                                    drawn by matplotlib on a figure of exactly H x W pixels with the
                                    axes filling it: [H, W, 3] RGB, uint8 values as float32
  manifest.json                     cases, signs, percentiles, colormap order, versions

    /tmp/fl/bin/pip install captum matplotlib
    /tmp/fl/bin/python tools/viz/captum_visualize_fixtures.py
"""
import json
import os

import captum
import matplotlib
import numpy as np
from captum.attr._utils import visualization as viz
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

matplotlib.use("Agg")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(ROOT, "crates", "firelight-viz", "tests", "fixtures", "captum_visualize")

SIGNS = ["all", "positive", "negative", "absolute_value"]
PERCS = [2, 10]
METHODS = ["heat_map", "blended_heat_map", "original_image", "masked_image", "alpha_scaling"]


def cases(rng):
    """Attributions of the shapes and tails gradient methods produce."""
    gauss = rng.normal(size=(1, 3, 12, 16))
    # Heavy tails: a few pixels carry most of the total, where the cumulative-sum threshold and a
    # plain percentile differ most.
    heavy = rng.standard_cauchy(size=(1, 3, 20, 20)) * 1e-3
    # Mostly zeros with a few positive and negative blobs, as occlusion-style maps look.
    sparse = np.zeros((1, 3, 10, 14))
    sparse[0, :, 2:5, 3:6] = rng.uniform(0.5, 1.0, size=(3, 3, 3))
    sparse[0, :, 6:9, 8:12] = -rng.uniform(0.1, 0.4, size=(3, 3, 4))
    single = rng.exponential(size=(1, 1, 9, 11)) - 0.7
    return {"gauss": gauss, "heavy": heavy, "sparse": sparse, "single": single}


def save(name, array):
    np.save(os.path.join(OUT, name), np.ascontiguousarray(array, dtype=np.float32))


def render(attr_hwc, photo, method, sign):
    """Captum's picture at the photo's pixel size: one axes filling a figure of H x W pixels."""
    h, w = photo.shape[:2]
    dpi = 100
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    viz.visualize_image_attr(
        attr_hwc, photo, method=method, sign=sign, plt_fig_axis=(fig, ax), use_pyplot=False
    )
    ax.set_axis_off()
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    assert rgba.shape[:2] == (h, w), rgba.shape
    return rgba[:, :, :3]


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240611)
    manifest = {
        "generator": "tools/viz/captum_visualize_fixtures.py",
        "versions": {
            "captum": captum.__version__,
            "numpy": np.__version__,
            "matplotlib": matplotlib.__version__,
        },
        "signs": SIGNS,
        "outlier_percs": PERCS,
        "cases": {},
    }
    attrs = {}
    for name, attr in cases(rng).items():
        attr = attr.astype(np.float32)
        attrs[name] = attr
        save(f"attr_{name}.npy", attr)
        manifest["cases"][name] = list(attr.shape)
        # Captum takes (H, W, C) and sums the channels over the last axis.
        summed = np.sum(np.transpose(attr[0], (1, 2, 0)), axis=2)
        for sign in SIGNS:
            for perc in PERCS:
                save(f"norm_{name}_{sign}_{perc}.npy", viz._normalize_attr(summed, sign, perc))

    ramp = np.linspace(0, 1, 11)
    maps = {
        "RedWhiteGreen": LinearSegmentedColormap.from_list("RdWhGn", ["red", "white", "green"]),
        "Greens": matplotlib.colormaps["Greens"],
        "Reds": matplotlib.colormaps["Reds"],
        "Blues": matplotlib.colormaps["Blues"],
        "Gray": matplotlib.colormaps["gray"],
    }
    manifest["colormaps"] = list(maps)
    save("colormaps.npy", np.stack([cmap(ramp)[:, :3] for cmap in maps.values()]))

    attr = attrs["gauss"]
    _, _, h, w = attr.shape
    # A photo with structure (a gradient and a bright square) so that the grey stretch matters.
    yy, xx = np.mgrid[0:h, 0:w]
    photo = np.stack([40 + 10 * xx, 30 + 12 * yy, 90 + 5 * (xx + yy)], axis=2)
    photo[3:8, 5:10] = [240, 200, 60]
    photo = np.clip(photo, 0, 255).astype(np.uint8)
    save("photo.npy", photo)
    attr_hwc = np.transpose(attr[0], (1, 2, 0))
    renders = []
    for method in METHODS:
        for sign in SIGNS:
            if method in ("masked_image", "alpha_scaling") and sign == "all":
                continue
            save(f"render_{method}_{sign}.npy", render(attr_hwc, photo, method, sign))
            renders.append([method, sign])
    manifest["renders"] = {"attribution": "attr_gauss.npy", "photo": "photo.npy", "cases": renders}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
