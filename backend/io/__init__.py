"""What users bring and what they get: reading inputs, writing outputs.

Inputs: mesh files through a headless-Blender child process, capture bundles,
labels) and writing what they get (labels, a coloured GLB, previews, loss curves). Problems with a
user's files or paths are ``ValidationError``s naming what is at fault (the CLI prints each as one
line, exit status 2)."""
