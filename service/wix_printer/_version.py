# The release version, read by setuptools at build time (pyproject: dynamic version) and by
# the service at run time without importlib.metadata (which pulls in the email package).
__version__ = "0.1.0"
