"""Split an embedding table across devices with keras.distribution (JAX).

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=8 \\
        python examples/sharded_embedding.py

builds a model with a `LookupEmbedding` (the table) and a Keras `Embedding`
for positions, shards the table's rows across the "model" axis of a
(devices / 4, 4) mesh with `kel.distribution.layout_map`, trains a few steps
with `model.fit` under `keras.distribution.ModelParallel`, prints what each
device holds, and trains the same model on one device for comparison. It
exits with status 1 if the two disagree by more than 1e-5.

`ModelParallel` shards variables on the JAX backend only. With another
backend, or fewer than 2 devices, the script says so and runs itself again in
a subprocess with `KERAS_BACKEND=jax`, `JAX_PLATFORMS=cpu` and 8 simulated CPU
devices (`XLA_FLAGS` must be set before JAX starts). On 8 real GPUs or TPU
cores the same script uses them as they are.
"""

import argparse
import math
import os
import subprocess
import sys

import keras
import numpy as np

from keras_embedlab import LookupEmbedding
from keras_embedlab.distribution import layout_map

SIMULATE = "--xla_force_host_platform_device_count=8"
RERUN = "KERAS_EMBEDLAB_SHARDED_EXAMPLE_RERUN"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vocabulary", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--length", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--model-axis", type=int, default=None,
                        help="devices per table (default 4, or all devices "
                             "when their number is not a multiple of 4)")
    return parser.parse_args(argv)


def rerun_simulated(argv):
    flags = os.environ.get("XLA_FLAGS", "").split()
    flags = [f for f in flags if "host_platform_device_count" not in f]
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               XLA_FLAGS=" ".join([*flags, SIMULATE]), **{RERUN: "1"})
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), *argv],
                          env=env, capture_output=True, text=True)
    print(proc.stdout, end="")
    if proc.returncode:
        print(proc.stderr[-4000:], file=sys.stderr)
    return proc.returncode


def make_model(vocabulary, dim, length):
    ids = keras.Input((length,), dtype="int32", name="ids")
    positions = keras.Input((length,), dtype="int32", name="positions")
    x = LookupEmbedding(vocabulary, dim, name="item_table")(ids)
    # Named like a table, but not one of ours: it stays replicated.
    p = keras.layers.Embedding(length, dim, name="position_embedding")
    x = keras.layers.Add()([x, p(positions)])
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model([ids, positions], keras.layers.Dense(1)(x))


def train(model, x, y, batch):
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    return model.predict(x, batch_size=batch, verbose=0)


def describe(variable):
    array = variable.value
    blocks = {str(s.index) for s in array.addressable_shards}
    shape = tuple(array.addressable_shards[0].data.shape)
    if len(blocks) == 1:
        return f"replicated: {len(array.sharding.device_set)} copies of {shape}"
    return f"split in {len(blocks)} blocks of {shape}"


def main(argv=None):
    args = parse_args(argv)
    backend = keras.backend.backend()
    devices = keras.distribution.list_devices() if backend == "jax" else []
    if len(devices) < 2:
        print(f"Found backend {backend!r} with {len(devices)} JAX device(s); "
              "ModelParallel needs JAX and several devices. To simulate 8 "
              "CPU devices, run:\n  KERAS_BACKEND=jax "
              f"XLA_FLAGS={SIMULATE} python examples/sharded_embedding.py")
        if os.environ.get(RERUN):
            return 1
        print("Running it that way now.\n")
        return rerun_simulated(argv or [])

    n = len(devices)
    model_axis = args.model_axis or (4 if n % 4 == 0 else n)
    if n % model_axis:
        print(f"--model-axis={model_axis} does not divide {n} devices.")
        return 1
    # Rows are split evenly: pad the vocabulary to a multiple of the axis.
    vocabulary = math.ceil(args.vocabulary / model_axis) * model_axis
    if vocabulary != args.vocabulary:
        print(f"vocabulary padded from {args.vocabulary} to {vocabulary} "
              f"rows, a multiple of the {model_axis} table shards")
    mesh = keras.distribution.DeviceMesh((n // model_axis, model_axis),
                                         ("batch", "model"), devices)
    print(f"{n} devices {devices[0]}..{devices[-1]}, mesh {mesh.shape} "
          f"{mesh.axis_names}; table {vocabulary} x {args.dim} float32 = "
          f"{vocabulary * args.dim * 4 / 2**20:.2f} MiB, "
          f"{vocabulary * args.dim * 4 / model_axis / 2**20:.2f} MiB a device")

    keras.utils.set_random_seed(0)
    model = make_model(vocabulary, args.dim, args.length)
    initial = model.get_weights()
    rng = np.random.default_rng(0)
    samples = args.batch * args.steps
    ids = rng.integers(0, vocabulary, (samples, args.length)).astype("int32")
    positions = np.tile(np.arange(args.length, dtype="int32"), (samples, 1))
    x, y = [ids, positions], rng.normal(size=(samples, 1)).astype("float32")

    layouts = layout_map(model, mesh)
    print(f"layout map keys: {list(layouts)}")
    distribution = keras.distribution.ModelParallel(layout_map=layouts,
                                                    batch_dim_name="batch")
    with distribution.scope():
        # Layouts apply when variables are created: re-create the model.
        sharded = keras.models.clone_model(model)
        sharded.set_weights(initial)
        sharded_out = train(sharded, x, y, args.batch)
    for variable in sharded.variables:
        print(f"  {variable.path:32} {describe(variable)}")
    table = sharded.get_layer("item_table").embeddings.value
    for shard in table.addressable_shards:
        rows = shard.index[0]
        print(f"  {str(shard.device):12} rows {rows.start}:{rows.stop} "
              f"shape {tuple(shard.data.shape)}")

    out = train(model, x, y, args.batch)
    diffs = [np.max(np.abs(sharded_out - out))] + [
        np.max(np.abs(a.numpy() - b.numpy()))
        for a, b in zip(sharded.variables, model.variables)
    ]
    worst = float(max(diffs))
    agree = worst <= 1e-5
    print(f"{args.steps} steps of model.fit: largest difference between "
          f"sharded and one-device outputs and weights: {worst:.2e} "
          f"({'agree' if agree else 'DISAGREE'} to 1e-5)")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
