"""Plain fine-tuning (LP-init-CE / ZS-init-CE in the paper): cross-entropy only."""
from dataclasses import dataclass

from . import Strategy, register


@register("ft")
@dataclass
class FineTune(Strategy):
    """Fine-tune the image encoder and the task's head with cross-entropy; no regulariser."""
