"""Studies of regularisation: the study's definition, ``pyreg compare`` (pyreg beside Keras), the
Keras and NumPy baselines, figures, the benchmark report and the ``pyreg`` command.

The trainer itself (``pyreg.models`` and the rest of the Keras mirror) needs only NumPy; this
subpackage adds matplotlib for figures (``pip install 'pyreg[study]'``) and, for the Keras side,
TensorFlow (``pip install 'pyreg[keras]'``). Its modules are imported on use.
"""

from __future__ import annotations
