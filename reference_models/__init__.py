"""The NTIRE Efficient SR challenge's reference architectures, one file each.

Plain PyTorch: nothing here imports esrprof (their published figures, pixel ranges and scales
live in ``esrprof.zoo``). In a checkout, ``reference_models/imdn.py:IMDN`` names a model; an
installed esrprof carries this folder as ``esrprof.reference_models``.
"""
