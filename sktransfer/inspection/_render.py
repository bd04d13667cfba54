"""Attributions people would rather look at than read: heat maps over pictures, coloured tokens."""

import html

import numpy as np

from .._plotting import pyplot
from ..data import read_image


def _unit(scores):
    """Scores scaled into [-1, 1] by the largest magnitude (all zeros stay zeros)."""
    scores = np.asarray(scores, dtype=np.float64)
    peak = np.max(np.abs(scores)) if scores.size else 0.0
    return scores / peak if peak > 0 else scores


class TokenAttributionDisplay:
    """Rendering for a text's token scores (mixed into ``TokenAttribution``)."""

    def to_html(self):
        """The tokens as HTML spans: green for evidence for the class, red against."""
        spans = []
        for token, score in zip(self.tokens, _unit(self.scores)):
            colour = f"rgba(0, 160, 0, {score:.2f})" if score >= 0 else f"rgba(220, 0, 0, {-score:.2f})"
            spans.append(
                f'<span title="{score:+.3f}" style="background:{colour};padding:1px 2px;'
                f'border-radius:3px">{html.escape(token)}</span>'
            )
        return f"<div>{html.escape(str(self.target))}: {' '.join(spans)}</div>"

    def _repr_html_(self):
        return self.to_html()

    def plot(self, ax=None, cmap="RdYlGn"):
        """The tokens in a row, each on a patch coloured by its score; returns the Figure."""
        plt = pyplot("TokenAttribution.plot")
        if ax is None:
            fig, ax = plt.subplots(figsize=(min(2 + 0.6 * len(self.tokens), 16), 1.2))
        else:
            fig = ax.figure
        colours = plt.get_cmap(cmap)
        x = 0.0
        for token, score in zip(self.tokens, _unit(self.scores)):
            box = {"facecolor": colours((score + 1) / 2), "edgecolor": "none", "pad": 2}
            ax.text(x, 0.5, token, va="center", ha="left", fontsize=11, bbox=box)
            x += 0.12 + 0.06 * len(token)
        ax.set_xlim(-0.1, max(x, 1.0))
        ax.set_ylim(0, 1)
        ax.axis("off")
        ax.set_title(f"Evidence for {self.target!r}", fontsize=10, loc="left")
        return fig


def plot_image_attribution(image, attribution, *, ax=None, alpha=0.5, cmap="jet"):
    """Lay an attribution map over its picture.

    Parameters
    ----------
    image : path, PIL image or pixel array
        The input that was explained.
    attribution : ndarray of shape (H, W)
        Its map from :func:`attribute`, at the image's own size.
    ax : matplotlib Axes or None, default=None
    alpha : float, default=0.5
        Opacity of the heat map.
    cmap : str, default="jet"

    Returns
    -------
    matplotlib.figure.Figure
        ``fig.savefig("why.png")`` keeps it.
    """
    plt = pyplot("plot_image_attribution")
    picture = np.asarray(read_image(image, 0))
    attribution = np.asarray(attribution)
    if attribution.shape != picture.shape[:2]:
        raise ValueError(
            f"plot_image_attribution: the attribution has shape {attribution.shape} but the image is "
            f"{picture.shape[:2]}; pass the map attribute() returned for this image."
        )
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 5 * picture.shape[0] / picture.shape[1]))
    else:
        fig = ax.figure
    positive = np.clip(_unit(attribution), 0, 1)  # the evidence for the class
    ax.imshow(picture)
    ax.imshow(positive, cmap=cmap, alpha=alpha * (positive > 0.05), vmin=0, vmax=1)
    ax.axis("off")
    return fig
