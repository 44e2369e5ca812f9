"""Importing this puts tests/reference on sys.path, for the tests outside
that folder that build reference models (refmodel.py)."""
import pathlib
import sys

_REF = str(pathlib.Path(__file__).resolve().parent / "reference")
if _REF not in sys.path:
    sys.path.insert(0, _REF)
