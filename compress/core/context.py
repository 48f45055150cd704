"""What a pass may use besides the model, provided lazily: calibration tokens, training
batches, the teacher. Nothing is loaded or tokenized until a pass asks for it, and then once.

The recipe's `data:` section (`DataConfig`) says where the text comes from: the embedded
training plays (default), a local text file/folder/glob, or `hf:<dataset>[/<config>]:<split>`.

    >>> import torch
    >>> context = PassContext(data=torch.zeros(2, 8, dtype=torch.long), progress=False)
    >>> context.calibration().shape
    torch.Size([2, 8])
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from compress.errors import UserError


class DataConfig(BaseModel):
    """Calibration (and training) data for passes that need it (GPTQ, AWQ, Wanda, distillation)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field("plays:train", description="'plays:<split>', a text file, folder or glob, or 'hf:<dataset>[/<config>]:<split>'.")
    samples: int = Field(128, ge=1, le=100_000, description="Number of calibration sequences (GPTQ used 128).")
    seq_len: int = Field(512, ge=8, le=131_072, description="Tokens per calibration sequence.")
    seed: int = Field(0, description="Seed of the sampler: same seed, same sequences.")
    batch_size: int = Field(8, ge=1, le=4096, description="Calibration sequences per forward pass of a block (memory vs. speed).")
    propagate: Literal["compressed", "dense"] = Field(
        "compressed",
        description="Sequential calibration: the next block's inputs come from the compressed block (GPTQ's reference) or the dense one.",
    )


class PassContext:
    """Tokenizer, device, progress flag and the lazy data providers a pass may call.

    `data`: calibration token ids [samples, seq_len] given by the caller (else drawn from
    `data_config` with `tokenizer`). `teacher`: a module, or a callable returning one, or None
    (then `snapshot_teacher` keeps a copy of the dense model before the passes run).
    """

    def __init__(
        self,
        *,
        data: torch.Tensor | None = None,
        tokenizer: Any = None,
        teacher: nn.Module | Callable[[], nn.Module] | None = None,
        data_config: DataConfig | None = None,
        device: str = "cpu",
        progress: bool = True,
        work_dir: str | os.PathLike | None = None,
    ) -> None:
        if data is not None and (not isinstance(data, torch.Tensor) or data.dim() != 2 or data.dtype != torch.long):
            raise UserError("calibration data must be token ids: a LongTensor [samples, seq_len] (e.g. from compress.data.calibration.calibration_batches)")
        self._calibration = data
        self.tokenizer = tokenizer
        self._teacher = teacher
        self.data_config = data_config or DataConfig()
        self.device = device
        self.progress = progress
        self.work_dir = work_dir  # where training passes checkpoint (a rerun resumes there); None: no checkpoints
        self._train_stream: torch.Tensor | None = None
        self.asking = "a pass"  # the pass now asking, named in errors

    def calibration(self) -> torch.Tensor:
        """Calibration token ids, LongTensor [samples, seq_len]; drawn once, then cached."""
        if self._calibration is None:
            if self.tokenizer is None:
                raise UserError(f"pass {self.asking!r} needs calibration data: pass data=<token ids> or tokenizer=<tokenizer> to apply()")
            from compress.data.calibration import calibration_batches

            config = self.data_config
            self._calibration = calibration_batches(self.tokenizer, n_samples=config.samples, seq_len=config.seq_len, seed=config.seed, source=config.source)
        return self._calibration

    def train_sampler(self, batch_size: int, seq_len: int | None = None, *, seed: int | None = None):
        """Training windows of the data's text (`WindowSampler`): `<bos>` + seq_len-1 tokens each,
        in a seed-fixed order that a resumed run restores; the token stream is read once."""
        from compress.data.windows import WindowSampler

        if self.tokenizer is None:
            raise UserError(f"pass {self.asking!r} needs training text: pass tokenizer=<tokenizer> to apply()")
        if self._train_stream is None:
            from compress.data.calibration import check_source, token_stream
            from compress.data.sources import load_text

            source = self.data_config.source
            self._train_stream = torch.tensor(token_stream(self.tokenizer, load_text(check_source(source))), dtype=torch.long)
        bos = getattr(self.tokenizer, "bos_token_id", None)
        bos = getattr(self.tokenizer, "eos_token_id", None) if bos is None else bos
        if bos is None:
            raise UserError(f"pass {self.asking!r}: the tokenizer has neither a BOS nor an EOS token to start training windows with; give it one")
        seq_len = seq_len or self.data_config.seq_len
        return WindowSampler(self._train_stream, batch_size=batch_size, seq_len=seq_len, seed=self.data_config.seed if seed is None else seed, bos_id=bos)

    def teacher(self) -> nn.Module:
        """The dense teacher (eval mode, no gradients), loaded once."""
        if self._teacher is None:
            raise UserError(f"pass {self.asking!r} needs a teacher model: apply(model, ..., teacher=dense_model)")
        if not isinstance(self._teacher, nn.Module):
            self._teacher = self._teacher()
        self._teacher.eval().requires_grad_(False)
        return self._teacher

    def snapshot_teacher(self, model: nn.Module) -> None:
        """Keep a copy of `model` as it is now as the teacher, unless one was given."""
        if self._teacher is None:
            self._teacher = copy.deepcopy(model)
