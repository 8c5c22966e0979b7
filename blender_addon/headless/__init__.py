"""Headless Blender for the CLI and the benchmark, in a child process.

bpy as a Python module: ``python -m partdistill.blender_addon.headless capture|capture-many ...`` (see
``__main__``); ``mesh_import`` loads mesh files into a fresh session. Not part of the extension zip.

Kept free of imports so that ``python -m`` runs ``__main__`` only once.
"""
