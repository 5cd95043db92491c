"""The package version, in the bottom layer so that library modules record it without importing ``seqpolicy``.

``seqpolicy.__version__`` and setup.cfg (``version = attr: seqpolicy.common.version.__version__``) read it here.
"""

__version__ = "0.1.0"
