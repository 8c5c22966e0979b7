"""Evaluation tools, apart from the product: procedural shape families and the real-mesh set, the
benchmark dataset captured through headless Blender, the SIMULATED teachers, the seed's 2D metric
mIoU2D, and the quality and speed runners behind ``partdistill bench``. The product never imports
this package."""
