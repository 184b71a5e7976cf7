"""grown_train: offline training and export of Grown's neural cellular automata.

The package grows log-mel spectrogram textures with an NCA (PyTorch) and ships
them as ONNX files that follow the contract in ``models/README.md``.
"""

__version__ = "0.1.0"

#: Version of the model contract written into every exported file.
CONTRACT_VERSION = 1
