"""The challenge's reference models as esrprof knows them: ``registry`` (names, published
figures, pixel range and scale of each architecture in ``esrprof.reference_models``) and
``compare`` (published against measured, the data behind ``esrprof zoo``)."""
