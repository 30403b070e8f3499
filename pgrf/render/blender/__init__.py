"""Everything that runs inside Blender: the only package of pgrf that imports ``bpy``.

Its modules run in render worker processes (``pgrf.render.worker``) and in Blender subprocesses that inspect
files or write the sample library; nothing outside this package imports ``bpy``."""
