"""wix-printer: approved Wix orders onto an ESC/POS kitchen printer, durably."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wix-printer")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+src"
