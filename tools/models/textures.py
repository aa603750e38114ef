#!/usr/bin/env python3
"""Procedural textures for firelight's TCAV ground-truth model: striped, dotted and "other".

Every image is 32x32 RGB, uint8, drawn from a numpy Generator, so a seed fixes the whole set.
Training (tools/models/train_texture_cnn.py) and the bundled concept folders use different seeds.

- striped: a square-ish wave of two random colours, random angle, period 4-10 px, soft edges;
- dotted:  dots of one colour (radius 1.2-3 px) on a background of another, jittered grid;
- other:   no periodic structure: smooth colour blobs (upsampled random grid), linear gradients,
           flat colour, coloured pixel noise, patchworks of rectangles or a few large discs,
           so "other" is as varied as possible.
The random pool (`make_mixed`) draws each image's kind at random, like random photos of a data set.
All three get mild pixel noise.
"""
import numpy as np

SIZE = 32


def _colours(rng, min_dist=0.45):
    """Two random RGB colours in [0, 1] at least `min_dist` apart, so the pattern is visible."""
    while True:
        a, b = rng.random(3), rng.random(3)
        if np.linalg.norm(a - b) >= min_dist:
            return a, b


def _finish(rng, img):
    img = img + rng.normal(0.0, 0.03, img.shape)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def striped(rng):
    a, b = _colours(rng)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(4.0, 10.0)
    phase = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    s = np.sin(2 * np.pi * u / period + phase)
    w = 1.0 / (1.0 + np.exp(-4.0 * s))  # soft square wave
    img = w[..., None] * a + (1 - w[..., None]) * b
    return _finish(rng, img)


def dotted(rng):
    bg, fg = _colours(rng)
    spacing = rng.uniform(6.0, 10.0)
    radius = rng.uniform(1.2, min(3.0, spacing / 2.5))
    img = np.ones((SIZE, SIZE, 3)) * bg
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    off = rng.uniform(0, spacing, 2)
    mask = np.zeros((SIZE, SIZE))
    for cy in np.arange(-spacing + off[0], SIZE + spacing, spacing):
        for cx in np.arange(-spacing + off[1], SIZE + spacing, spacing):
            jy, jx = rng.normal(0, spacing * 0.12, 2)
            d = np.sqrt((yy - cy - jy) ** 2 + (xx - cx - jx) ** 2)
            mask = np.maximum(mask, np.clip(radius + 0.5 - d, 0, 1))
    img = mask[..., None] * fg + (1 - mask[..., None]) * bg
    return _finish(rng, img)


def other(rng):
    kind = rng.integers(0, 6)
    if kind == 0:  # smooth blobs: bilinear upsampling of a 3x3..5x5 grid of colours
        n = int(rng.integers(3, 6))
        grid = rng.random((n, n, 3))
        t = np.linspace(0, n - 1, SIZE)
        i0 = np.clip(np.floor(t).astype(int), 0, n - 2)
        f = t - i0
        rows = grid[i0] * (1 - f)[:, None, None] + grid[i0 + 1] * f[:, None, None]
        img = rows[:, i0] * (1 - f)[None, :, None] + rows[:, i0 + 1] * f[None, :, None]
    elif kind == 1:  # linear gradient between two colours
        a, b = rng.random(3), rng.random(3)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) / (SIZE - 1)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        u = (u - u.min()) / max(u.max() - u.min(), 1e-6)
        img = u[..., None] * a + (1 - u[..., None]) * b
    elif kind == 2:  # flat colour
        img = np.ones((SIZE, SIZE, 3)) * rng.random(3)
    elif kind == 3:  # coloured pixel noise around a random colour
        img = rng.random(3) + rng.normal(0.0, rng.uniform(0.1, 0.3), (SIZE, SIZE, 3))
    elif kind == 4:  # patchwork of overlapping rectangles
        img = np.ones((SIZE, SIZE, 3)) * rng.random(3)
        for _ in range(int(rng.integers(2, 7))):
            y0, x0 = rng.integers(0, SIZE - 4, 2)
            h, w = rng.integers(6, SIZE, 2)
            img[y0:y0 + h, x0:x0 + w] = rng.random(3)
    else:  # a few large discs
        img = np.ones((SIZE, SIZE, 3)) * rng.random(3)
        yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
        for _ in range(int(rng.integers(1, 4))):
            cy, cx = rng.uniform(0, SIZE, 2)
            r = rng.uniform(6.0, 12.0)
            mask = np.clip(r + 0.5 - np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2), 0, 1)[..., None]
            img = mask * rng.random(3) + (1 - mask) * img
    return _finish(rng, img)


GENERATORS = {"striped": striped, "dotted": dotted, "other": other}
CLASSES = ["striped", "dotted", "other"]


def make(kind, count, seed):
    """`count` images of `kind` as a uint8 array [count, 32, 32, 3]."""
    rng = np.random.default_rng(seed)
    return np.stack([GENERATORS[kind](rng) for _ in range(count)])


def make_mixed(count, seed):
    """`count` images, each of a kind drawn uniformly from the three: a random sample of the data
    distribution, as TCAV's random images are (random photos include zebras too)."""
    rng = np.random.default_rng(seed)
    return np.stack([GENERATORS[CLASSES[rng.integers(0, 3)]](rng) for _ in range(count)])
