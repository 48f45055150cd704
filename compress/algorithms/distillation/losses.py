"""The distillation losses: soft-label KL at a temperature, hard-label CE, hidden-state matching.

    loss = alpha * KL(p_teacher || p_student) * T^2 + beta * CE(student, data) + gamma * hidden

with p = softmax(logits / T) over the vocabulary, the KL averaged over tokens. The T^2 factor
keeps the soft-label gradients the same size as T changes (Hinton et al., 2015). The hidden
loss compares student layer outputs, through a learned linear map when the widths differ
(TinyBERT, Minitron), with the teacher's layer at the same relative depth: cosine (1 - cos,
scale-free) or MSE.

    >>> import torch
    >>> logits = torch.randn(2, 5, 11)
    >>> float(kl_divergence(logits, logits, temperature=2.0)) < 1e-6   # a student equal to its teacher
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_divergence(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Mean over tokens of KL(softmax(teacher / T) || softmax(student / T)) * T^2, in nats."""
    vocab = student_logits.shape[-1]
    student = F.log_softmax(student_logits.float().reshape(-1, vocab) / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.float().reshape(-1, vocab) / temperature, dim=-1)
    per_token = (teacher.exp() * (teacher - student)).sum(dim=-1)
    return per_token.mean() * temperature**2


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of logits [..., vocab] against targets [...]."""
    return F.cross_entropy(logits.float().flatten(0, -2), targets.flatten())


def hidden_loss(student: torch.Tensor, teacher: torch.Tensor, kind: str) -> torch.Tensor:
    """'cosine': mean over tokens of 1 - cos(student, teacher); 'mse': mean squared error."""
    student, teacher = student.float(), teacher.float()
    if kind == "cosine":
        return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()
    return F.mse_loss(student, teacher)


def teacher_layer(student_layer: int, student_layers: int, teacher_layers: int) -> int:
    """The teacher hidden-state index at the same relative depth (0 = embeddings, L = last layer).

    >>> [teacher_layer(i, 2, 4) for i in range(3)]
    [0, 2, 4]
    """
    return round(student_layer * teacher_layers / max(1, student_layers))
