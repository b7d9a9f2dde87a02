"""Multilevel-in-width training of ReLU networks with the Full Approximation Scheme.

Sections 3-7 and Algorithms 1-2 of "Multilevel-in-width training for deep
neural network regression"::

    hier = build_hierarchy(model, levels=3)                 # HEM + transfer operators
    stream = MinibatchStream(len(X), batch_size=200)
    trainer = FASTrainer(hier, X, Y, stream)                # V-cycles, SGD smoother
    while trainer.work["flops"] < budget:
        trainer.cycle()
"""

from .batches import MinibatchStream
from .config import FASConfig, GrowthConfig, OptimizerConfig
from .fas import DivergenceError, FASTrainer
from .growth import NestedIteration
from .hem import cosine_strength, heavy_edge_matching
from .hierarchy import Hierarchy, build_hierarchy
from .protocol import Trainer
from .transfer import Coarsening, Transfer
from .work import WorkCounter, flops_per_sample

__all__ = ["Coarsening", "DivergenceError", "FASConfig", "FASTrainer", "GrowthConfig", "Hierarchy", "MinibatchStream",
           "NestedIteration", "OptimizerConfig", "Trainer", "Transfer", "WorkCounter", "build_hierarchy",
           "cosine_strength", "flops_per_sample", "heavy_edge_matching"]
