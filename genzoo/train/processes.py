"""The processes of a run, through Accelerate: which one this is, and what they do together.

`accelerate launch -m genzoo train ...` starts several processes (one per GPU, or CPU processes on
gloo); a plain `genzoo train` is one. With several, each phase's gradients are averaged across
processes before its optimizer steps (`average_gradients`), which stays correct however the phases
toggle `requires_grad` (a single DDP wrapper would need every phase to run through its `forward`).
Losses and weights are checked for NaN on every process together (`any_true`), or one process would
wait for the others forever.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from accelerate import PartialState
from torch import Tensor


class Processes:
    def __init__(self, cpu: bool) -> None:
        self.state = PartialState(cpu=cpu)
        self.device: torch.device = self.state.device
        self.rank: int = self.state.process_index
        self.count: int = self.state.num_processes
        self.is_main: bool = self.state.is_main_process

    def barrier(self) -> None:
        if self.count > 1:
            dist.barrier()

    def gather(self, value: Any) -> list[Any]:
        """`value` from every process, in process order."""
        if self.count == 1:
            return [value]
        values: list[Any] = [None] * self.count
        dist.all_gather_object(values, value)
        return values

    def broadcast(self, tensors: list[Tensor]) -> None:
        """Process 0's values into every process's tensors (the same initial weights everywhere)."""
        if self.count > 1:
            for tensor in tensors:
                dist.broadcast(tensor, 0)

    def average_gradients(self, params: list[Tensor]) -> None:
        """Replace each gradient by its mean over the processes (one all-reduce of the flattened gradients)."""
        if self.count == 1:
            return
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch._utils._flatten_dense_tensors(grads)
        dist.all_reduce(flat)
        flat /= self.count
        for grad, averaged in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
            grad.copy_(averaged)

    def any_true(self, flags: Tensor) -> list[bool]:
        """Element-wise OR of an int32 flag vector over the processes, as Python booleans (one host sync)."""
        if self.count > 1:
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return [bool(v) for v in flags.cpu().tolist()]
