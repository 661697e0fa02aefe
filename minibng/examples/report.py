"""What the experiment scripts print: an epoch's line and the summary table.  A table is built from data — each
printed label maps to the key it stands for — so no printed text is ever read back."""
from __future__ import annotations

__all__ = ["describe_metrics", "print_table", "epochs"]


def epochs(n):
    """'1 epoch', '8 epochs' ('20/30/50 epochs' for a text)."""
    return f"{n} epoch{'s' * (n != 1)}"


def describe_metrics(metrics):
    """'train 0.1234  test 0.2345 (accuracy 91.20 %)' from an epoch's metrics."""
    parts = [f"train {metrics['train_loss']:.4f}"]
    for key, value in metrics.items():
        if key.endswith("_loss") and key != "train_loss":
            name, accuracy = key[:-5], metrics.get(f"{key[:-5]}_accuracy")
            parts.append(f"{name} {value:.4f}" + ("" if accuracy is None else f" (accuracy {100 * accuracy:.2f} %)"))
    return "  ".join(parts)


def print_table(title, rows, columns, cell, row_header="optimizer", width=12):
    """Print a table titled ``title``.  ``rows`` and ``columns`` map each printed label to the key it stands for
    (``{"depth 18": 18}``), and ``cell(row_key, column_key)`` returns a cell's text."""
    print(f"\n{title}")
    print(f"{row_header:<12}" + "".join(f"{label:>{width}}" for label in columns))
    for label, row_key in rows.items():
        print(f"{label:<12}" + "".join(f"{cell(row_key, column_key):>{width}}" for column_key in columns.values()))
