"""The render stage: plans a category's models, runs them in recycled Blender worker processes and writes
``renders/<category>/`` (the Blender side itself is ``pgrf.render.blender``)."""
