"""Text towers as zero-shot classifiers: prompts -> unit-norm embeddings -> class weights."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


@torch.no_grad()
def encode_text(clip: nn.Module, tokenizer, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """Unit-norm text embeddings from a CLIP model's text tower."""
    device = next(clip.parameters()).device
    out = []
    for i in range(0, len(texts), batch_size):
        tokens = tokenizer(texts[i:i + batch_size]).to(device)
        out.append(F.normalize(clip.encode_text(tokens).float(), dim=-1))
    return torch.cat(out)


@torch.no_grad()
def class_embeddings(clip: nn.Module, tokenizer, classnames: list[str], templates: list[str]) -> torch.Tensor:
    """Zero-shot classifier weights [n_classes, D]: template-averaged, unit-norm (CLIP's recipe)."""
    prompts = [t.format(c) for c in classnames for t in templates]
    emb = encode_text(clip, tokenizer, prompts).view(len(classnames), len(templates), -1).mean(1)
    return F.normalize(emb, dim=-1)
