#!/usr/bin/env python3
"""Quantus 0.6's RegionPerturbation on the small CNN of metrics_fixtures.py (same weights, same
inputs and Saliency maps): the drop of the target's logit as 6x6 regions (16 is not a multiple
of 6: Quantus pads the grid) and then 8x8 regions are set to the sample's minimum, most relevant
first and least relevant first. Written into tests/fixtures/metrics/region.json.

    /tmp/fl/bin/pip install torch quantus numpy
    /tmp/fl/bin/python tools/metrics/region_fixture.py
"""
import json
import os
import sys

import numpy as np
import quantus
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from metrics_fixtures import OUT, model  # noqa: E402

net = model()
x = np.load(os.path.join(OUT, "input.npy"))
a = np.load(os.path.join(OUT, "saliency.npy"))
with open(os.path.join(OUT, "manifest.json")) as f:
    targets = np.array(json.load(f)["targets"])
out = {"versions": {"quantus": quantus.__version__, "torch": torch.__version__}, "targets":
       targets.tolist(), "cases": []}
for patch, regions, order in ((6, 5, "morf"), (6, 5, "lerf"), (8, 100, "morf")):
    metric = quantus.RegionPerturbation(patch_size=patch, regions_evaluation=regions, order=order,
                                        disable_warnings=True)
    drops = metric(model=net, x_batch=x, y_batch=targets, a_batch=a, device="cpu", softmax=False)
    out["cases"].append({"patch_size": patch, "regions_evaluation": regions, "order": order,
                         "drops": np.asarray(drops, dtype=np.float64).tolist()})
with open(os.path.join(OUT, "region.json"), "w") as f:
    json.dump(out, f, indent=1)
print(json.dumps(out["cases"], indent=None)[:600])
