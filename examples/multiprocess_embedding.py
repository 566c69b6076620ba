"""Train an embedding table split across processes (JAX, jax.distributed).

    python examples/multiprocess_embedding.py

starts 2 processes on this machine (`--processes`), each with 2 simulated
CPU devices (`--devices-per-process`), joined into one JAX job by
`keras.distribution.initialize` (CPU collectives over gloo). A
`LookupEmbedding` table is split by rows over all the devices of all the
processes (a `(1, devices)` mesh, `kel.distribution.layout_map`), so each
process holds only its own rows. Every process then:

1. trains a model with a dense table and `Adam` through `model.fit`;
2. trains a `RowSparseModel` (`sparse=True` table) with `LazyAdam` and with
   `SparseSGD(momentum=0.9)`;
3. checks, shard by shard, the rows of the table and of the optimizer's
   slots that it holds against the same model trained on one device (in the
   same process), to 1e-5;
4. sends a batch with an invalid id to a model in `invalid_ids="error"`
   mode, which every process must refuse (none may hang in a collective).

The launcher prints each process's report and exits with status 1 if a
process disagrees, fails, or has not finished after `--timeout` seconds.
Each process feeds the whole batch (the mesh's batch axis has size 1: pure
model parallelism); with a batch axis > 1, each process would feed its own
slice of the global batch (`jax.make_array_from_process_local_data`).
"""

import argparse
import os
import socket
import subprocess
import sys
import time

WORKER = "--worker"
VOCABULARY, DIM, LENGTH, SAMPLES, BATCH = 256, 8, 6, 64, 16


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--devices-per-process", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=240.0,
                        help="seconds before the launcher stops every "
                             "process and reports a hang")
    parser.add_argument(WORKER, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("processes", "devices_per_process"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1. "
                         f"Received: {getattr(args, name)}")
    return args


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args):
    """Starts the processes, waits for all, prints their reports."""
    port = free_port()
    env = dict(
        os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_force_host_platform_device_count="
                  f"{args.devices_per_process}",
    )
    print(f"{args.processes} processes x {args.devices_per_process} CPU "
          f"devices, coordinator 127.0.0.1:{port}", flush=True)
    procs = [
        subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), WORKER,
             "--processes", str(args.processes), "--devices-per-process",
             str(args.devices_per_process), "--process-id", str(i),
             "--port", str(port)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(args.processes)
    ]
    deadline = time.monotonic() + args.timeout
    failed = False
    for i, proc in enumerate(procs):
        try:
            out, err = proc.communicate(
                timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            out, err = proc.communicate()
            print(f"[process {i}] HANG: not finished after "
                  f"{args.timeout:.0f} s; every process stopped.")
            failed = True
        # gloo's own connection lines left out.
        print("".join(f"[process {i}] {line}\n"
                      for line in out.splitlines()
                      if not line.startswith("[Gloo]")), end="")
        if proc.returncode:
            failed = True
            print(f"[process {i}] exit status {proc.returncode}:\n"
                  + err[-3000:])
    print("all processes agree with one device" if not failed
          else "FAILED", flush=True)
    return 1 if failed else 0


# What each process runs.


def make_model(keras, kel, sparse, invalid_ids="zeros"):
    ids = keras.Input((LENGTH,), dtype="int32", name="ids")
    rows = kel.LookupEmbedding(VOCABULARY, DIM, sparse=sparse,
                               invalid_ids=invalid_ids, name="table")(ids)
    pooled = keras.layers.GlobalAveragePooling1D()(rows)
    outputs = keras.layers.Dense(1)(pooled)
    if sparse:
        return kel.RowSparseModel(ids, outputs)
    return keras.Model(ids, outputs)


def largest_difference(sharded_variables, single_variables):
    """Max |a - b| over the shards this process holds, and the rows held."""
    import numpy as np

    worst, rows = 0.0, set()
    for a, b in zip(sharded_variables, single_variables):
        reference = np.asarray(b.numpy())
        for shard in a.value.addressable_shards:
            local = np.asarray(shard.data)
            worst = max(worst, float(np.max(
                np.abs(local - reference[shard.index]), initial=0.0)))
            if a.path.endswith("table/embeddings"):
                index = shard.index[0]
                rows.add((index.start or 0, index.stop or a.shape[0]))
    return worst, sorted(rows)


def work(args):
    import jax

    # CPU devices of several processes talk through gloo.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    import keras
    import numpy as np

    import keras_embedlab as kel
    from keras_embedlab.distribution import layout_map

    keras.distribution.initialize(f"127.0.0.1:{args.port}",
                                  num_processes=args.processes,
                                  process_id=args.process_id)
    devices = keras.distribution.list_devices()
    mesh = keras.distribution.DeviceMesh((1, len(devices)),
                                         ("batch", "model"), devices)
    print(f"process {jax.process_index()} of {jax.process_count()}: "
          f"{jax.local_device_count()} local devices of {len(devices)}")
    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCABULARY - 16, (SAMPLES, LENGTH)).astype("int32")
    y = rng.normal(size=(SAMPLES, 1)).astype("float32")
    optimizers = {
        "dense table, Adam": (False, lambda: keras.optimizers.Adam(0.01)),
        "sparse table, LazyAdam": (True, lambda: kel.LazyAdam(0.01)),
        "sparse table, SparseSGD": (
            True, lambda: kel.SparseSGD(0.1, momentum=0.9)),
    }
    agree = True
    for label, (sparse, optimizer) in optimizers.items():
        keras.utils.set_random_seed(1)
        template = make_model(keras, kel, sparse)
        initial = template.get_weights()
        distribution = keras.distribution.ModelParallel(
            layout_map=layout_map(template, mesh), batch_dim_name="batch")
        # Every process feeds the whole batch (the batch axis has size 1).
        distribution.auto_shard_dataset = False
        with distribution.scope():
            sharded = keras.models.clone_model(template)
            sharded.set_weights(initial)
            sharded.compile(optimizer(), "mse")
            sharded.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False,
                        verbose=0)
        single = keras.models.clone_model(template)
        single.set_weights(initial)
        single.compile(optimizer(), "mse")
        single.fit(x, y, batch_size=BATCH, epochs=2, shuffle=False,
                   verbose=0)
        weights, rows = largest_difference(sharded.variables,
                                           single.variables)
        slots, _ = largest_difference(sharded.optimizer.variables,
                                      single.optimizer.variables)
        moved = float(np.max(np.abs(single.get_weights()[0] - initial[0])))
        ok = max(weights, slots) <= 1e-5 and moved > 1e-3
        agree = agree and ok
        print(f"{label}: holds table rows {rows}; largest difference from "
              f"one device: weights {weights:.1e}, optimizer slots "
              f"{slots:.1e} ({'agree' if ok else 'DISAGREE'} to 1e-5)")

    keras.utils.set_random_seed(1)
    checked = make_model(keras, kel, sparse=False, invalid_ids="error")
    distribution = keras.distribution.ModelParallel(
        layout_map=layout_map(checked, mesh), batch_dim_name="batch")
    distribution.auto_shard_dataset = False
    bad = x[:BATCH].copy()
    bad[3, 2] = VOCABULARY + 5
    with distribution.scope():
        checked = keras.models.clone_model(checked)
        try:
            checked.predict(bad, batch_size=BATCH, verbose=0)
            refused = None
        except Exception as error:  # JAX wraps the callback's error.
            refused = str(error)
    expected = f"invalid id: {VOCABULARY + 5}."
    if refused is not None and expected in refused:
        print(f"invalid id refused here: ...{expected} Ids must be ...")
    else:
        agree = False
        print(f"invalid id NOT refused: {refused!r}")
    jax.distributed.shutdown()
    return 0 if agree else 1


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    return work(args) if args.worker else launch(args)


if __name__ == "__main__":
    sys.exit(main())
