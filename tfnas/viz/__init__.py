"""Drawings: cells (graphviz, or the built-in drawing), architecture-weight heatmaps, sorted network weights."""
from tfnas.viz.cell_graph import DotNotFoundError, cell_graph, cell_image, check_drawable, draw_genotype, drawn_cell
from tfnas.viz.heatmap import alpha_heatmap, heatmap_image, labelled_heatmap
from tfnas.viz.weights import sorted_weights_image

__all__ = ["DotNotFoundError", "alpha_heatmap", "cell_graph", "cell_image", "check_drawable", "draw_genotype",
           "drawn_cell", "heatmap_image", "labelled_heatmap", "sorted_weights_image"]
