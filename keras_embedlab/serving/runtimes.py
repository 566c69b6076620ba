"""Running a file written by `model.export(path, format=...)` in that
format's own runtime, with nothing of Keras or keras_embedlab: what a
serving system does. Each runtime is imported only when its format is
run.

`run_exported(path, format, inputs)` takes the model's inputs in the
order of `model.inputs` (inputs are matched to the runtime's by name where
the runtime keeps names) and returns the outputs as NumPy arrays.
"""

import re

import numpy as np

# The file name each format's export expects (`model.export` checks).
EXTENSIONS = {
    "tf_saved_model": "",
    "onnx": ".onnx",
    "litert": ".tflite",
    "openvino": ".xml",
    "torch": ".pt2",
}

RUNTIMES = {
    "tf_saved_model": "tf.saved_model.load",
    "onnx": "onnxruntime",
    "litert": "LiteRT interpreter, builtin ops",
    "openvino": "OpenVINO runtime (CPU)",
    "torch": "torch.export.load",
}


def load_exported(path, format, names=None):
    """A function from the model's inputs (a list, in the order of
    `model.inputs`) to its outputs (a list of NumPy arrays), run by the
    format's runtime on the file or folder at `path`.

    `names`: the model's input names (`[i.name for i in model.inputs]`),
    to match inputs where the runtime reorders them (LiteRT).
    """
    if format not in EXTENSIONS:
        raise ValueError(
            f"`format` must be one of {sorted(EXTENSIONS)}. Received: "
            f"format={format!r}")
    run = _LOADERS[format](str(path), names)

    def call(inputs):
        outputs = run([np.asarray(x) for x in inputs])
        return [np.asarray(y) for y in outputs]
    return call


def run_exported(path, format, inputs, names=None):
    """Outputs of the exported model at `path` for `inputs` (a list):
    `load_exported(path, format, names)(inputs)`."""
    return load_exported(path, format, names)(inputs)


def _saved_model(path, names):
    import tensorflow as tf

    loaded = tf.saved_model.load(path)

    def run(inputs):
        tensors = [tf.constant(x) for x in inputs]
        # Several inputs go in as one list, as Keras calls the model.
        outputs = loaded.serve(tensors if len(tensors) > 1 else tensors[0])
        return outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return run


def _onnx(path, names):
    import onnxruntime

    session = onnxruntime.InferenceSession(
        path, providers=["CPUExecutionProvider"])

    def run(inputs):
        feeds = {spec.name: x
                 for spec, x in zip(session.get_inputs(), inputs)}
        return session.run(None, feeds)
    return run


def _by_name(details, names):
    """The runtime's input details in the model's input order."""
    if names is None or len(details) == 1:
        return details
    ordered = []
    for name in names:
        match = [d for d in details if d["name"] == name
                 or re.search(rf"(^|_){re.escape(name)}(:\d+)?$",
                              d["name"])]
        if len(match) != 1:
            raise ValueError(f"No single LiteRT input named like {name!r}: "
                             f"{[d['name'] for d in details]}")
        ordered.append(match[0])
    return ordered


def _litert(path, names):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    details = _by_name(interpreter.get_input_details(), names)

    def run(inputs):
        for detail, x in zip(details, inputs):
            interpreter.resize_tensor_input(detail["index"], x.shape)
        interpreter.allocate_tensors()
        for detail, x in zip(details, inputs):
            interpreter.set_tensor(detail["index"],
                                   x.astype(detail["dtype"]))
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"])
                for d in interpreter.get_output_details()]
    return run


def _openvino(path, names):
    import openvino

    compiled = openvino.Core().compile_model(path, "CPU")

    def run(inputs):
        result = compiled(inputs)
        return [result[output] for output in compiled.outputs]
    return run


def _torch(path, names):
    import torch

    module = torch.export.load(path).module()

    def run(inputs):
        tensors = [torch.as_tensor(x) for x in inputs]
        with torch.no_grad():
            outputs = module(tensors if len(tensors) > 1 else tensors[0])
        if isinstance(outputs, torch.Tensor):
            outputs = [outputs]
        return [y.detach().numpy() for y in outputs]
    return run


_LOADERS = {
    "tf_saved_model": _saved_model,
    "onnx": _onnx,
    "litert": _litert,
    "openvino": _openvino,
    "torch": _torch,
}
