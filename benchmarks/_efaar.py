"""Import efaar-benchmarking (a benchmark-only reference) without scvi-tools.

efaar's modules import ``scvi.model`` at import time; scvi-tools is huge and
not needed for TVN or recall, so a stub module is registered first.
"""

import importlib
import sys
import types


def import_efaar():
    """Return the ``efaar_benchmarking.efaar`` and ``.benchmarking`` modules."""
    scvi = types.ModuleType("scvi")
    scvi_model = types.ModuleType("scvi.model")
    scvi_model.SCVI = object
    scvi.model = scvi_model
    sys.modules.setdefault("scvi", scvi)
    sys.modules.setdefault("scvi.model", scvi_model)
    efaar = importlib.import_module("efaar_benchmarking.efaar")
    benchmarking = importlib.import_module("efaar_benchmarking.benchmarking")
    return efaar, benchmarking
