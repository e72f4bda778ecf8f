"""Files a student copies and fills in: ``engine.py``, the build-it-yourself track.

They are part of the package so that an installed minirect carries them
(``minirect.exercises.build.TEMPLATE`` is the path of ``engine.py``). Their
functions are stubs that raise ``NotImplementedError``.
"""
