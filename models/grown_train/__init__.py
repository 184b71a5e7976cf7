"""grown_train: offline training and export of Grown's neural cellular automata.

The package grows log-mel spectrogram textures with an NCA (PyTorch) and ships
them as ONNX files that follow the contract in ``models/README.md``.
"""

__version__ = "0.1.0"

#: Version of the model contract written into every file that needs nothing newer:
#: a file written at version 1 loads in every Grown build.
CONTRACT_VERSION = 1
#: The version a file needs when its seed is a passage of a bank it carries
#: (``grown.seed_state`` kind ``excerpt`` and ``grown.seed_bank``).
EXCERPT_CONTRACT_VERSION = 2
