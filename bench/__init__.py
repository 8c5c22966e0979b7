"""The evaluation tools behind ``partdistill bench``, apart from the product.

Procedural shape families and the real-mesh set, the benchmark dataset captured through headless
Blender, the SIMULATED teachers, the paper's 2D metric mIoU2D, and the quality and speed runners.
The product never imports this package."""
