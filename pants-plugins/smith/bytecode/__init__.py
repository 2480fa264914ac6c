"""Python bytecode in the build: unchecked-hash `.pyc` compiled by the image's own interpreter.

Debian ships its standard library without `.pyc` (its postinst runs py3compile, and smith never
runs maintainer scripts) and a PEX has none either, so without this step every container start
compiles each module it imports, in memory, again (the root is read-only). `smith pyc` compiles
the `.py` files of a layer's inputs once, in a cached Process, into a tree tar of `__pycache__`
files the layer then holds.
"""
