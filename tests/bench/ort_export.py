#!/usr/bin/python3
"""ort_export: writes a classifier model directory as ONNX for the ONNX Runtime
rows of `make bench`, the way a user would export a trained Fastformer: the
PyTorch reference module (tools/fastformer.py) with the directory's own
safetensors weights (the same weights the C engine loads), torch.onnx.export,
opset 14, dynamic batch and length.

The graph takes input_ids (int64, batch x length, 0 = padding) and returns
pooled (batch x D, the encoder's pooled vectors, what bench_engine times) and
probabilities (batch x labels, softmax of the classifier head).

With --probe in place of MODEL_DIR it writes a graph with the same input and
outputs but only two element-wise ops, to measure what one run costs outside
the model (the node binding, tensor wrapping, the session's bookkeeping).

usage: /usr/bin/python3 ort_export.py MODEL_DIR|--probe OUT.onnx
Needs Debian's python3-torch; the ONNX package is not needed."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from torch_bench import load  # noqa: E402

OPSET = 14


class PooledAndProbabilities(torch.nn.Module):
    """FastformerClassifier's encode and forward as one graph with two outputs."""

    def __init__(self, classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids):
        pooled = self.classifier.encode(input_ids)
        return pooled, torch.softmax(self.classifier.dense_linear(pooled), dim=-1)


class Probe(torch.nn.Module):
    """Same signature, next to no work: the per-run cost outside the model."""

    def forward(self, input_ids):
        x = input_ids.float()
        return x + 1.0, x * 2.0


def export(model_dir, out_path):
    """Writes out_path atomically (a partial file never looks finished);
    model_dir None writes the probe graph."""
    graph = Probe() if model_dir is None else PooledAndProbabilities(load(model_dir)[0]).eval()
    example = torch.ones(2, 8, dtype=torch.long)
    tmp = out_path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(graph, (example,), tmp, opset_version=OPSET,
                          input_names=["input_ids"], output_names=["pooled", "probabilities"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "length"},
                                        "pooled": {0: "batch"}, "probabilities": {0: "batch"}})
    os.replace(tmp, out_path)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: ort_export.py MODEL_DIR|--probe OUT.onnx")
    torch.set_num_threads(1)
    export(None if sys.argv[1] == "--probe" else sys.argv[1], sys.argv[2])


if __name__ == "__main__":
    main()
