"""Member kinds: the models a version combines, one module per kind.

Each kind has the same three seams (as Treelite separates them): the publisher converts an
estimator into bytes on its own machine (``tickerserve.publishing.conversion``), the bundle
stores the bytes with their sha256, and the function turns bytes into a loaded member here.
A loader is a plain ``bytes -> object`` function (``load_booster``, ``load_treelite``), so a
crash-proof wrapper (``safe_load``) can run it in a child process first.

``kinds`` holds what every kind shares (``MemberSpec``, the tasks, the ``Member`` protocol);
``loading`` picks the kind's module on first use, so a LightGBM-only function never imports
Treelite; ``links`` holds scikit-learn's logistic and softmax links. Every member answers
``predict(rows) -> (n_rows, n_outputs)`` float64: class probabilities in the bundle's class
order for a classifier, one column of values for a regressor. May import only the
top-level modules (``errors``, ``layout``, ...).
"""
