"""The demo: the Palmer penguins served, watched, retrained and rolled out by mloop.

``mloop demo`` tours one server in this process (``tour``); ``mloop demo --loop``
runs ``mloop serve`` in a folder and lets the real server heal its model while only
traffic and labels come from outside (``loop``). Needs the ``demo`` extra
(``palmerpenguins``, which ships the data; nothing is downloaded).
"""
