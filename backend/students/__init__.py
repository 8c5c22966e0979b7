"""The 3D student network, its part-name embeddings and its set-up."""
