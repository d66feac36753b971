"""Training results as pictures: the confusion matrix of an evaluation, written atomically."""

import numpy as np

from mobilenet_sep.utils import files


def plot_confusion(metrics, path, title="Confusion matrix"):
    """A PNG of the confusion matrix (rows: true class, columns: predicted), written atomically."""
    from matplotlib.figure import Figure

    matrix = np.asarray(metrics["confusion_matrix"])
    names = metrics.get("class_names") or [str(index) for index in range(len(matrix))]
    size = min(4 + 0.4 * len(matrix), 20)
    figure = Figure(figsize=(size, size * 0.85))
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046)
    if len(matrix) <= 30:
        axes.set_xticks(range(len(names)), names, rotation=90 if len(matrix) > 10 else 0)
        axes.set_yticks(range(len(names)), names)
        for (row, column), count in np.ndenumerate(matrix):
            if len(matrix) <= 20 and count:
                color = "white" if count > matrix.max() / 2 else "black"
                axes.text(column, row, str(count), ha="center", va="center", color=color, fontsize=8)
    top1 = f" (top-1 {metrics['top1']:.1%})" if "top1" in metrics else ""
    axes.set(xlabel="predicted class", ylabel="true class", title=title + top1)
    figure.tight_layout()
    files.save_figure(figure, path, dpi=120)
    return path
