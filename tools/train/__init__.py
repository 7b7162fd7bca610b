"""Training scripts: each writes model registry versions (model.onnx + metadata.json) and their fixtures."""
