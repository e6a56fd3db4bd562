"""The servers of the agnhost image `cluster/nodeimages.py` builds (netexec, serve-hostname,
pause, as the e2e test image has them), run in a container as `/agnhost <command>`.

Stdlib only, so the image needs nothing but Python's standard library.
"""
