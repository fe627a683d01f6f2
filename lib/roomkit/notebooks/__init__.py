"""What only the notebooks need: :mod:`.runner` executes them with papermill (the walk-through
behind ``make demo``), :mod:`.walkthrough` holds the conveniences their cells call.
"""
