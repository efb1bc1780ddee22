"""talkhead: multi-view recordings of people speaking -> paired audio / 3D-face dataset.

The package holds the algorithms; the Snakemake workflow in the repository root calls
into it through thin scripts. Nothing here imports snakemake.
"""

__version__ = "0.1.0"
