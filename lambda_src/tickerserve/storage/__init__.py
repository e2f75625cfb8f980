"""Storage: everything that reads or writes the model store (an S3 bucket or a local folder).

``store`` is the bucket-or-folder interface with deadlines (``deadline``); every shared object
is written by ``compare_and_swap``; ``registry`` (routes and aliases), ``bundle`` (one version
folder), ``version_index`` (each model's digest index), ``history`` (append-only JSON-lines
histories) and ``outcomes`` (realized results) each own one kind of object. May import
``members`` (a bundle names its member kinds) and the top-level modules, nothing above.
"""
