"""wix-printer: approved Wix orders onto an ESC/POS kitchen printer, durably."""

from ._version import __version__

__all__ = ["__version__"]
