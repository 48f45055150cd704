"""Training windows over a token stream, drawn by seed, with a resumable data order.

Every window is `<bos>` + seq_len-1 tokens of the stream as inputs, predicting the next
seq_len tokens. Training draws windows epoch by epoch without replacement, each epoch cut at a
random phase so windows do not always split the text at the same places. The sampler's state
(its generator and the rest of the current order) is two tensors, so a killed run resumes
with exactly the batches it would have drawn.

    >>> import torch
    >>> from compress.data.windows import WindowSampler
    >>> sampler = WindowSampler(torch.arange(100), batch_size=2, seq_len=8, seed=0, bos_id=0)
    >>> inputs, targets = sampler.next_batch()
    >>> inputs.shape, bool((inputs[:, 1:] == targets[:, :-1]).all())
    (torch.Size([2, 8]), True)
"""

from __future__ import annotations

import torch

from compress.errors import UserError


def windows(stream: torch.Tensor, starts: torch.Tensor, seq_len: int, bos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) [len(starts), seq_len]: targets are the stream at each start, inputs lag by one behind <bos>."""
    targets = stream[starts[:, None] + torch.arange(seq_len)]
    inputs = torch.cat([torch.full((len(starts), 1), bos_id, dtype=targets.dtype), targets[:, :-1]], dim=1)
    return inputs, targets


class WindowSampler:
    """Batches of `batch_size` windows of `seq_len` tokens, in an order fixed by `seed`."""

    def __init__(self, stream: torch.Tensor, *, batch_size: int, seq_len: int, seed: int, bos_id: int):
        if len(stream) < seq_len * 2:
            raise UserError(f"the train text has {len(stream)} tokens, too few for seq_len={seq_len}; give the corpus more text or a shorter seq_len")
        self.stream, self.batch_size, self.seq_len, self.bos_id = stream, batch_size, seq_len, bos_id
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.long)

    def _epoch_starts(self) -> torch.Tensor:
        offset = int(torch.randint(0, self.seq_len, (1,), generator=self.generator))
        count = (len(self.stream) - offset) // self.seq_len
        return offset + self.seq_len * torch.randperm(count, generator=self.generator)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        while len(self.order) < self.batch_size:
            self.order = torch.cat([self.order, self._epoch_starts()])
        starts, self.order = self.order[: self.batch_size], self.order[self.batch_size :]
        return windows(self.stream, starts, self.seq_len, self.bos_id)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state(), "order": self.order.clone()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
