"""The base layer: what every other layer may import.

- :mod:`.errors`: the exception types and their one-line messages.
- :mod:`.backend`: which Keras backend runs, set before Keras is imported.
- :mod:`.quiet`: library noise kept out of the terminal (and written to the study's log).
- :mod:`.interrupts`: Ctrl-C and SIGTERM as a graceful stop at the next epoch boundary.
- :mod:`.version`: the installed version.

Nothing here imports Keras or JAX, nor any other tricklab package.
"""
