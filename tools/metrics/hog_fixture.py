#!/usr/bin/env python3
"""scikit-image's `hog` (orientations 9, 8x8 pixels per cell, 3x3 cells per block, L2-Hys) of a
seeded 40 x 48 map: tests/fixtures/metrics/hog_map.npy and hog.npy, for tests/metrics.rs.

    /tmp/fl/bin/pip install scikit-image numpy
    /tmp/fl/bin/python tools/metrics/hog_fixture.py
"""
import os

import numpy as np
from skimage.feature import hog

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures",
                   "metrics")

rng = np.random.default_rng(3)
smooth = np.cumsum(np.cumsum(rng.normal(size=(40, 48)), 0), 1)
m = (smooth - smooth.min()) / (smooth.max() - smooth.min())
features = hog(m, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3),
               block_norm="L2-Hys", feature_vector=True)
np.save(os.path.join(OUT, "hog_map.npy"), m.astype(np.float32))
np.save(os.path.join(OUT, "hog.npy"), features.astype(np.float32))
print(features.shape)
