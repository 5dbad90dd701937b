"""Pictures and the HTML report of a run folder."""

from genzoo.report.html import write_report
from genzoo.report.plots import plot_losses

__all__ = ["plot_losses", "write_report"]
