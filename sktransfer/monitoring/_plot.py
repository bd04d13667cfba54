"""A drift statistic over time, as people read it: a line, the alarms marked."""

from .._plotting import pyplot


def plot_drift(windows, ax=None):
    """Draw ``DriftDetector.test_windows``' table: the statistic per window, drifted windows in red.

    Parameters
    ----------
    windows : pandas.DataFrame
        What ``test_windows`` returned.
    ax : matplotlib Axes or None, default=None
        Where to draw; None: a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.savefig("drift.png")`` keeps it.
    """
    plt = pyplot("plot_drift")

    missing = {"start", "stop", "statistic", "drift"} - set(windows.columns)
    if missing:
        raise ValueError(
            f"plot_drift: windows lacks the columns {sorted(missing)}; pass what "
            "DriftDetector.test_windows returned."
        )
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3))
    else:
        fig = ax.figure
    middle = (windows["start"] + windows["stop"]) / 2
    ax.plot(middle, windows["statistic"], marker="o", color="tab:blue", label="statistic")
    alarms = windows["drift"].astype(bool)
    ax.scatter(middle[alarms], windows["statistic"][alarms], color="tab:red", zorder=3, label="drift")
    method = windows.attrs.get("method", "")
    alpha = windows.attrs.get("alpha")
    ax.set_xlabel("position in the stream (window centre)")
    ax.set_ylabel(f"{method} statistic".strip())
    if alpha is not None:
        ax.set_title(f"Drift per window (alpha = {alpha})")
    ax.legend(loc="best")
    fig.tight_layout()
    return fig
