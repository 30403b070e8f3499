"""Asset discovery for the render half: Quixel Bridge libraries, Fab zips, folders of GLB/glTF/FBX/OBJ models
and the procedural sample library, turned into a ``Catalog`` of models to render."""
