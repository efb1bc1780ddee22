"""Training of talkhead's audio-driven face models (PyTorch Lightning).

:mod:`.config` (the ``models`` config section; light, read by the workflow at start-up),
:mod:`.data` (windows, statistics, MeshTalk's log-mel windows), :mod:`.modules` (the models'
Lightning modules, :func:`~.modules.load_module`), :mod:`.train` (:func:`~.train.train_model`:
checkpoints, resume, CPU/GPU/DDP), :mod:`.animate` and :mod:`.render` (inference over any audio,
``talkhead animate``), :mod:`.curves` (the loss-curve figure). Import the submodules: this
package imports nothing, so that reading the config does not load torch.
"""
