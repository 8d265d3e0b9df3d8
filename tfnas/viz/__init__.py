"""Drawings: cells (graphviz), architecture-weight heatmaps, sorted network weights."""
from tfnas.viz.cell_graph import DotNotFoundError, cell_graph, check_drawable, draw_genotype
from tfnas.viz.heatmap import alpha_heatmap
from tfnas.viz.weights import sorted_weights_image

__all__ = ["DotNotFoundError", "alpha_heatmap", "cell_graph", "check_drawable", "draw_genotype",
           "sorted_weights_image"]
