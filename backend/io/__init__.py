"""Reading what users bring (mesh files through a headless-Blender child process, capture bundles,
labels) and writing what they get (labels, a coloured GLB, previews, loss curves)."""


class InputError(Exception):
    """A problem with the user's files or paths that the user can fix; the CLI prints it as one line
    (exit status 2)."""
