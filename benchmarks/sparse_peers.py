"""The peers of `bench_sparse.py`: plain PyTorch, and a NumPy floor.

- PyTorch, without Keras: `nn.Embedding(V, dim, sparse=True)` -> mean over
  the bag -> `nn.Linear(dim, 1)`, MSE; `torch.optim.SGD` on every parameter
  (it takes sparse gradients), or `torch.optim.SparseAdam` on the table with
  `torch.optim.Adam` on the linear layer (`SparseAdam` takes sparse
  gradients only), as a PyTorch user would write it. One step is
  `zero_grad`, forward, `backward`, `step` and `loss.item()`.
- PyTorch's empty step: the same step without the table, a fixed
  `(batch, dim)` float input -> `nn.Linear(dim, 1)`, MSE, `torch.optim.SGD`
  or `torch.optim.Adam`: what a step costs PyTorch before any row.
- The NumPy floor: the memory traffic any row-sparse step must pay, and
  nothing else: reading and writing back the distinct rows of the batch
  (`a[rows] = a[rows]`, fancy indexing) in the table (SGD) or in the table
  and both Adam moments. The distinct rows are found before timing.
"""

import numpy as np

TORCH_SGD = "torch.optim.SGD"
TORCH_ADAM = "torch.optim.SparseAdam"
TORCH_DENSE_ADAM = "torch.optim.Adam"
FLOOR_SGD = "read+write rows: table"
FLOOR_ADAM = "read+write rows: table, m, v"


def torch_step(optimizer, vocabulary, dim, seed=0):
    """`step(ids, y)`: one training step of the plain PyTorch model."""
    import torch

    torch.manual_seed(seed)
    table = torch.nn.Embedding(vocabulary, dim, sparse=True)
    head = torch.nn.Linear(dim, 1)
    if optimizer == TORCH_SGD:
        optimizers = [torch.optim.SGD([*table.parameters(),
                                       *head.parameters()], lr=0.01)]
    else:
        optimizers = [torch.optim.SparseAdam(list(table.parameters()),
                                             lr=0.001),
                      torch.optim.Adam(head.parameters(), lr=0.001)]

    def step(ids, y):
        for o in optimizers:
            o.zero_grad()
        pooled = table(torch.from_numpy(ids)).mean(dim=1)
        loss = torch.nn.functional.mse_loss(head(pooled),
                                            torch.from_numpy(y))
        loss.backward()
        for o in optimizers:
            o.step()
        return loss.item()

    return step


def torch_empty_step(optimizer, batch, dim, seed=0):
    """`step(ids, y)`: the PyTorch step without the table (ids unused)."""
    import torch

    torch.manual_seed(seed)
    head = torch.nn.Linear(dim, 1)
    pooled = torch.randn(batch, dim)
    if optimizer == TORCH_SGD:
        optimizer = torch.optim.SGD(head.parameters(), lr=0.01)
    else:
        optimizer = torch.optim.Adam(head.parameters(), lr=0.001)

    def step(ids, y):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(head(pooled),
                                            torch.from_numpy(y))
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def numpy_floor_step(optimizer, vocabulary, dim, batches):
    """`step(ids, y)`: read and write the batch's distinct rows."""
    rng = np.random.default_rng(0)
    count = 1 if optimizer == FLOOR_SGD else 3
    arrays = [rng.random((vocabulary, dim), dtype=np.float32)
              for _ in range(count)]
    distinct = {id(x): np.unique(x) for x, _ in batches}

    def step(ids, y):
        rows = distinct[id(ids)]
        for a in arrays:
            a[rows] = a[rows]

    return step
