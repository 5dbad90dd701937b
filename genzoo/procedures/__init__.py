"""Procedures: jobs that optimise an input against fixed networks and train no weights (encoding an
image into a trained model's latent space, style transfer, adversarial examples). Each module
registers one with `@PROCEDURES.register(name)`; `genzoo run NAME key=value ...` runs it into a run
folder with its config, a log, its pictures and a report."""

from genzoo.procedures import attack, invert, simulate, stylize  # noqa: F401  (registers the procedures)
from genzoo.procedures.base import Procedure, ProcedureConfig, run

__all__ = ["Procedure", "ProcedureConfig", "run"]
