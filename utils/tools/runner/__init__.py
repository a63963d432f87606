"""`course run`: execute lessons over a matrix of parameters with papermill.

Split as papermill is: ``plan`` (which runs, checked before anything executes), ``execute``
(one run, on a worker), ``executors`` (local processes or a Dask cluster), ``dispatch``
(hands runs out, writes what comes back into OUT/), ``summary`` (tables and plot) and ``cli``.
Each run lands in ``OUT/<combination>/<lesson>.ipynb``; its key results come from
``utils.course.record_results`` in the executed notebook.
"""
