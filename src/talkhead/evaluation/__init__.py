"""Stage accuracy against the ground truth of a capture that has one (the synthetic studio).

Only this package reads ground truth (:mod:`.ground_truth`); only :mod:`talkhead.synth` writes it.
"""
