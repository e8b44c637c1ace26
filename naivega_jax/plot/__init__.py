"""Callbacks that draw a run with matplotlib (PNG files beside the run's data) or write it for TensorBoard, and
pictures of architectures."""

from ._callbacks import PlotBestGraph, PlotFitness, ScatterBatchSize, ScatterOpt, ScatterPop
from ._graphplot import plot_graph
from ._run import CbAll, MultiPlot, plot_run
from ._tensorboard import TensorBoard

__all__ = [
    "CbAll",
    "MultiPlot",
    "PlotBestGraph",
    "PlotFitness",
    "ScatterBatchSize",
    "ScatterOpt",
    "ScatterPop",
    "TensorBoard",
    "plot_graph",
    "plot_run",
]
